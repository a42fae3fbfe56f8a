"""The hub's admin site: webhooks first on its index (the operators' main tool, above
the task queue and the login throttle), and lists the whole width of the window."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

# The index's order: what operators open most, first; apps not named here follow.
APP_ORDER = ("hooks", "jobs", "namespaces", "routes", "accounts", "api")


class HubAdminSite(admin.AdminSite):
    site_header = "webhookhub administration"
    site_title = "webhookhub admin"
    enable_nav_sidebar = False  # a 1400 px window fits every list's columns

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        rank = {label: i for i, label in enumerate(APP_ORDER)}
        return sorted(apps, key=lambda app: rank.get(app["app_label"], len(rank)))


class HubAdminConfig(AdminConfig):
    default_site = "webhookhub.admin_site.HubAdminSite"
