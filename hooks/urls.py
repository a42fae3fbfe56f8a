"""The engine's pages beside the admin's own (mounted under admin/ by the project):
the dashboard and the Server configuration page of named server hooks."""

from django.contrib import admin
from django.urls import path

from hooks.tools.admin_views import server_configuration
from hooks.tools.dashboard import dashboard

urlpatterns = [
    path("dashboard/", dashboard, name="hooks_dashboard"),
    path(
        "server-configuration/",
        admin.site.admin_view(server_configuration),
        name="hooks_server_configuration",
    ),
]
