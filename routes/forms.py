"""Admin forms: route events (the pattern is compiled and probed when saved) and route
webhooks (engine webhook fields, credentials write-only)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

import hooks
from hooks.models import Scope, Webhook
from routes.events import CALLED
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


class RouteWebhookForm(forms.ModelForm):
    """A route webhook and its engine webhook in one form. The secret is generated (and
    shown once); the header value and the password are write-only."""

    active = forms.BooleanField(required=False, initial=True)
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        label="Target", max_length=2000, widget=forms.URLInput(attrs={"size": 80})
    )
    secret = forms.ChoiceField(
        choices=[("keep", "Keep as it is"), ("new", "Generate a new secret (shown once)"),
                 ("remove", "No secret")],
        initial="new", help_text="Sent in the payload as APIO does, and signs each request "
        "(Standard Webhooks).",
    )  # fmt: skip
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

    class Meta:
        model = RouteWebhook
        fields = ["events"]
        widgets = {"events": forms.CheckboxSelectMultiple}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hook = self.instance.webhook if self.instance.pk else None
        if hook:
            self.initial.update(
                active=hook.active, name=hook.name, url=hook.url, secret="keep",
                header_name=next(iter(hook.headers), ""), basic_auth_username=hook.basic_auth_username,
            )  # fmt: skip
        else:
            self.fields["secret"].choices = self.fields["secret"].choices[1:]
            del self.fields["remove_password"]
        self.fields["events"].help_text = "The route events that fire it."

    def clean_url(self) -> str:
        return hooks.validate_target_url(self.cleaned_data["url"].strip())

    def clean_header_name(self) -> str:
        name = self.cleaned_data["header_name"].strip()
        if name and not all(c.isalnum() or c in "-_" for c in name):
            raise ValidationError("A header name has letters, digits, '-' and '_' only.")
        if name.lower() in {"authorization", "content-type", "content-length", "host"}:
            raise ValidationError(f"{name} is set by the hub.")
        return name

    def clean(self) -> dict:
        data = super().clean()
        hook = self.instance.webhook if self.instance.pk else None
        if data.get("header_name") and not data.get("header_value"):
            if not (hook and hook.headers.get(data["header_name"])):
                self.add_error("header_value", "Give the header a value.")
        if data.get("basic_auth_password") and not data.get("basic_auth_username"):
            self.add_error("basic_auth_username", "A password needs a username.")
        return data

    @transaction.atomic
    def save(self, commit: bool = True) -> RouteWebhook:
        data = self.cleaned_data
        hook = self.instance.webhook if self.instance.pk else Webhook(scope=Scope.SERVER)
        hook.name, hook.url, hook.active = data["name"], data["url"], data["active"]
        hook.event_types = [CALLED]
        self.new_secret = ""
        if data["secret"] == "new":
            hook.secret = self.new_secret = hooks.generate_secret()
        elif data["secret"] == "remove":
            hook.secret = hook.previous_secret = ""
        old_value = next(iter(hook.headers.values()), "")
        name = data["header_name"]
        hook.headers = {name: data["header_value"] or old_value} if name else {}
        hook.basic_auth_username = data["basic_auth_username"]
        if data.get("remove_password") or not hook.basic_auth_username:
            hook.basic_auth_password = ""
        elif data["basic_auth_password"]:
            hook.basic_auth_password = data["basic_auth_password"]
        hook.save()
        self.instance.webhook = hook
        self.instance.save()
        self._save_m2m()
        return self.instance
