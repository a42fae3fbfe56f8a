from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.shortcuts import redirect
from django.urls import reverse

from accounts.events import user_webhooks_enabled
from accounts.models import ApiToken, SiteConfig, User
from accounts.presence import with_presence


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "name", "is_staff", "page_open", "date_joined"]
    search_fields = ["username", "email", "name"]
    fieldsets = BaseUserAdmin.fieldsets + ((None, {"fields": ["name"]}),)
    add_fieldsets = (
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["username", "email", "name", "password1", "password2"],
            },
        ),
    )

    def get_queryset(self, request):
        return with_presence(super().get_queryset(request))

    @admin.display(boolean=True, description="page open now", ordering="present")
    def page_open(self, obj: User) -> bool:
        """Whether the user has a page of the hub open (no notification then)."""
        return obj.present


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "can_post_events", "may_address_anyone",
                    "created_at", "last_used_at"]  # fmt: skip
    list_filter = ["can_post_events", "may_address_anyone"]
    search_fields = ["name", "user__email"]
    readonly_fields = ["user", "name", "hint", "created_at", "last_used_at"]
    exclude = ["digest"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are shown once to their owner: created on the settings page


class SiteConfigForm(forms.ModelForm):
    """One switch, worded by where its value comes from: the environment or this page."""

    enable_user_webhooks = forms.TypedChoiceField(
        label="Users' notification webhooks",
        # radiolist: the admin's look for choices (else each is squeezed to a label's width)
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
        coerce=lambda value: value == "on",
        empty_value=None,
        required=False,
    )

    class Meta:
        model = SiteConfig
        fields = ["enable_user_webhooks"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from_env = "on" if settings.ENABLE_USER_WEBHOOKS else "off"
        field = self.fields["enable_user_webhooks"]
        field.choices = [
            ("", f"As the environment says (ENABLE_USER_WEBHOOKS: {from_env} now)"),
            ("on", "On, whatever ENABLE_USER_WEBHOOKS says"),
            ("off", "Off, whatever ENABLE_USER_WEBHOOKS says"),
        ]
        value = self.instance.enable_user_webhooks
        self.initial["enable_user_webhooks"] = "" if value is None else ("on" if value else "off")
        field.help_text = (
            f"In effect now: {'on' if user_webhooks_enabled() else 'off'}. Off hides the "
            "notification webhook from users' settings pages and sends them nothing."
        )


@admin.register(SiteConfig)
class SiteConfigAdmin(admin.ModelAdmin):
    """A settings page, not a list: the one row is created on first look."""

    form = SiteConfigForm

    def changelist_view(self, request, extra_context=None):
        return redirect(reverse("admin:accounts_siteconfig_change", args=[SiteConfig.load().pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "title": "Account settings",
                         "show_save_and_continue": False}  # fmt: skip
        return super().change_view(request, object_id, form_url, extra_context)

    def response_change(self, request, obj):
        self.message_user(request, "Account settings saved.")
        return redirect(reverse("admin:accounts_siteconfig_change", args=[obj.pk]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
