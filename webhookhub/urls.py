from django.contrib import admin
from django.urls import path

from hooks.dashboard import dashboard

urlpatterns = [
    path("admin/dashboard/", dashboard, name="hooks_dashboard"),
    path("admin/", admin.site.urls),
]
