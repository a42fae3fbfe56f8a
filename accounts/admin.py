from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.events import user_webhooks_enabled
from accounts.models import ApiToken, SiteConfig, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "name", "is_staff", "last_activity", "date_joined"]
    search_fields = ["username", "email", "name"]
    fieldsets = BaseUserAdmin.fieldsets + (("Activity", {"fields": ["name", "last_activity"]}),)
    add_fieldsets = (
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["username", "email", "name", "password1", "password2"],
            },
        ),
    )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "created_at", "last_used_at"]
    search_fields = ["name", "user__email"]
    readonly_fields = ["user", "name", "hint", "created_at", "last_used_at"]
    exclude = ["digest"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are shown once to their owner: created on the settings page


@admin.register(SiteConfig)
class SiteConfigAdmin(admin.ModelAdmin):
    list_display = ["__str__", "enable_user_webhooks", "in_effect"]

    @admin.display(description="user webhooks in effect")
    def in_effect(self, obj) -> str:
        return "on" if user_webhooks_enabled() else "off"

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not SiteConfig.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
