from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView, TemplateView

import hooks

urlpatterns = [
    path("admin/", include("hooks.urls")),  # the dashboard and server configuration
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("v2/", include("jobs.urls")),
    path("api/v1/", include("api.urls")),
    path("metrics", hooks.metrics_view, name="metrics"),
    path("namespaces/", include("namespaces.urls")),
    path("jobs/", include("jobs.page_urls")),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", RedirectView.as_view(url=static("webhookhub/favicon.svg"), permanent=True)),
]
