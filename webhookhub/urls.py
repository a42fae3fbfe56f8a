from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from hooks.admin_views import server_configuration
from hooks.dashboard import dashboard

urlpatterns = [
    path("admin/dashboard/", dashboard, name="hooks_dashboard"),
    path(
        "admin/server-configuration/",
        admin.site.admin_view(server_configuration),
        name="hooks_server_configuration",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("v2/", include("jobs.urls")),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
]
