"""Admin forms: route events (the pattern is compiled and probed when saved) and route
webhooks (engine webhook fields, credentials write-only)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

import hooks
from routes import configure
from routes.matching import compile_pattern
from routes.models import RouteEvent, RouteWebhook

KEEP = "Leave blank to keep the stored value."


class RouteEventForm(forms.ModelForm):
    class Meta:
        model = RouteEvent
        fields = ["label", "method", "pattern"]

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"]
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return pattern


class RouteWebhookForm(hooks.WebhookConfigForm, forms.ModelForm):
    """A route webhook and its engine webhook in one form (hooks.configure checks and
    stores the engine webhook); the header value and the password are write-only."""

    active = forms.BooleanField(required=False, initial=True)
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        label="Target", max_length=2000, widget=forms.URLInput(attrs={"size": 80})
    )
    header_name = forms.CharField(label="Custom header", max_length=100, required=False)
    header_value = forms.CharField(
        label="Custom header value", max_length=2000, required=False,
        widget=forms.PasswordInput(render_value=False), help_text=KEEP,
    )  # fmt: skip
    basic_auth_username = forms.CharField(
        label="Basic auth. username", max_length=200, required=False
    )
    basic_auth_password = forms.CharField(
        label="Basic auth. password", max_length=200, required=False,
        widget=forms.PasswordInput(render_value=False), help_text=KEEP,
    )  # fmt: skip
    remove_password = forms.BooleanField(label="Remove the password", required=False)
    follow_redirects = forms.BooleanField(
        label="Follow redirects", required=False,
        help_text="Follow the target's redirects (at most 5). Off: a redirect is a failure.",
    )  # fmt: skip

    CONFIGURE_NAMES = {"headers": "header_value", "events": "events"}

    class Meta:
        model = RouteWebhook
        fields = ["events"]
        widgets = {"events": forms.CheckboxSelectMultiple(attrs={"class": "radiolist"})}  # as above

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hook = configure.engine_webhook(self.instance if self.instance.pk else None)
        if self.instance.pk:
            hook = self.hook
            self.initial.update(
                active=hook.active, name=hook.name, url=hook.url,
                header_name=next(iter(hook.headers), ""), basic_auth_username=hook.basic_auth_username,
                follow_redirects=hook.follow_redirects,
            )  # fmt: skip
        else:
            del self.fields["remove_password"]
        self.fields[
            "secret_action"
        ].help_text = (
            "Sent in the payload as APIO does, and signs each request (Standard Webhooks)."
        )
        self.secret_fields_for(self.hook)
        self.fields["events"].help_text = "The route events that fire it."
        self.saved = None

    def clean(self) -> dict:
        data = super().clean()
        changes = {name: data[name] for name in ("name", "url", "active", "basic_auth_username",
                                                 "follow_redirects") if name in data}  # fmt: skip
        if "header_name" in data:
            name = data["header_name"].strip()
            changes["headers"] = {name: data.get("header_value") or None} if name else {}
        changes.update(
            self.password_change(
                data.get("basic_auth_password"), remove=data.get("remove_password")
            )
        )
        self.plan_change(self.hook, configure.engine_changes(changes), self.CONFIGURE_NAMES)
        return data

    @property
    def new_secret(self) -> str:
        return self.saved.new_secret if self.saved else ""

    def save(self, commit: bool = True, by=None) -> RouteWebhook:
        events = self.cleaned_data.get("events")
        route = self.instance if self.instance.pk else None
        self.instance, self.saved = configure.store(route, self.plan, events, by)
        return self.instance
