from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("admin/", include("hooks.urls")),  # the dashboard and server configuration
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("v2/", include("jobs.urls")),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
]
