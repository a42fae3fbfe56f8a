"""Validation of webhook configuration: bad input gets a clear message and saves nothing."""

from __future__ import annotations

import json
import re

from django import forms
from django.core.exceptions import ValidationError

from hooks import catalog, conf, scopes, ssrf, webhook_secrets
from hooks.models import ALL_EVENTS, Scope, Webhook
from hooks.outbox import filters
from hooks.outgoing import templating
from hooks.outgoing.request import MASK

HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
RESERVED_HEADERS = {
    "host", "content-type", "content-length", "transfer-encoding", "connection",
    "user-agent", "authorization", "x-hub-signature-256", "x-webhookhub-event", "x-webhookhub-hook",
    "x-djinn-ci-event", "x-djinn-ci-hook-id", "x-djinn-ci-signature",
}  # fmt: skip


def validate_target_url(url: str, *, user_supplied: bool = False) -> str:
    """URL rules shared by every form that takes a webhook URL. A URL a user supplies
    (not staff) is held to WEBHOOK_USER_ALLOWED_NETWORKS instead of the operator's
    exemptions."""
    try:
        ssrf.check_target(url, conf.exempt_networks(conf.settings(), user_supplied))
    except ssrf.UnsafeURL as exc:
        raise ValidationError(str(exc)) from None
    return url


def validate_secret(secret: str) -> str:
    """A signing secret as given ('whsec_' + base64 of 24-64 bytes), or a ValidationError."""
    try:
        webhook_secrets.secret_key(secret)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    return secret


def validate_payload_filter(text: str) -> dict | None:
    """A payload filter as JSON text (blank: none), or a ValidationError saying where."""
    if not text.strip():
        return None
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"The filter is not valid JSON: {exc}.") from None
    try:
        return filters.validate(spec)
    except filters.FilterError as exc:
        raise ValidationError(str(exc)) from None


def validate_template(template: str) -> str:
    """A JSON data template (blank allowed), or a ValidationError saying where it breaks."""
    if template.strip():
        try:
            templating.validate(template)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    return template


def parse_headers(text: str, existing: dict[str, str]) -> dict[str, str]:
    """`Name: value` lines. A value of ******** keeps the stored one (values are write-only)."""
    headers: dict[str, str] = {}
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        raise ValidationError("Headers may not contain a bare carriage return (CR).")
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ValidationError(f"Line {number}: write headers as 'Name: value'.")
        if not HEADER_NAME.match(name):
            raise ValidationError(f"Line {number}: {name!r} is not a valid header name.")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise ValidationError(f"Line {number}: {name} is set by webhookhub itself.")
        if value == MASK:
            if name not in existing:
                raise ValidationError(f"Line {number}: give a value for the new header {name}.")
            value = existing[name]
        if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value):
            raise ValidationError(
                f"Line {number}: header values may not contain control characters."
            )
        headers[name] = value
    return headers


class WebhookForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=(), required=False, widget=forms.CheckboxSelectMultiple
    )
    headers_text = forms.CharField(
        label="Custom headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "X-Api-Key: value"}),
        help_text="One 'Name: value' per line. Stored values show as ******** and are kept.",
    )
    new_secret = forms.CharField(
        label="Secret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Blank keeps the current secret (a new webhook gets a generated "
        "one); 'whsec_' followed by base64 of 24-64 bytes sets it.",
    )
    new_basic_auth_password = forms.CharField(
        label="Basic auth password",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Blank keeps the current password.",
    )
    clear_basic_auth_password = forms.BooleanField(label="Remove the password", required=False)

    payload_filter = forms.CharField(
        label="Payload filter",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField",
                                     "placeholder": '{"path": "job.status", "eq": "COMPLETED"}'}),
        help_text='Only events whose payload matches: {"path": "a.b", "eq"|"ne"|"in"|"nin"|'
        '"exists"|"gt"|"gte"|"lt"|"lte": value}, combined with {"all": [...]} or {"any": [...]}. '
        "Blank: every event it subscribes to.",
    )  # fmt: skip

    class Meta:
        model = Webhook
        fields = [
            "name", "url", "active", "scope", "owner", "namespace", "event_types", "payload_filter",
            "format", "data_template", "timeout", "verify_tls", "github_signature",
            "djinn_headers", "basic_auth_username",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = [
            ("all", [(ALL_EVENTS, "All events of its scope, now and later")]),
            *catalog.grouped_choices(),
        ]
        self.fields["event_types"].initial = list(self.instance.event_types or [])
        if self.instance.payload_filter is not None:
            self.initial["payload_filter"] = json.dumps(self.instance.payload_filter, indent=2)
        self.fields["headers_text"].initial = "\n".join(
            f"{name}: {MASK}" for name in (self.instance.headers or {})
        )

    def clean_url(self) -> str:
        return self.cleaned_data["url"].strip()

    def clean_data_template(self) -> str:
        return validate_template(self.cleaned_data.get("data_template", ""))

    def clean_payload_filter(self):
        return validate_payload_filter(self.cleaned_data.get("payload_filter", ""))

    def clean_timeout(self):
        timeout = self.cleaned_data.get("timeout")
        limit = conf.settings().max_timeout
        if timeout is not None and not 0 < timeout <= limit:
            raise ValidationError(f"Give a timeout between 0 and {limit:g} seconds.")
        return timeout

    def clean_headers_text(self) -> dict[str, str]:
        return parse_headers(self.cleaned_data.get("headers_text", ""), self.instance.headers or {})

    def clean_new_secret(self) -> str:
        secret = self.cleaned_data.get("new_secret", "").strip()
        return validate_secret(secret) if secret else ""

    def clean(self):
        data = super().clean()
        scope = data.get("scope") or self.instance.scope  # read-only once it exists
        if scope == Scope.USER and not data.get("owner") and "owner" in self.fields:
            self.add_error("owner", "A user webhook needs its user.")
        if scope == Scope.NAMESPACE and "namespace" not in self.fields:
            pass  # its own page: the namespace it belongs to is fixed
        elif scope == Scope.NAMESPACE and not data.get("namespace"):
            self.add_error("namespace", "A namespace webhook needs its namespace.")
        elif scope == Scope.NAMESPACE:
            key = scopes.find_namespace(data["namespace"].strip())
            if key is None:
                self.add_error(
                    "namespace", f"No namespace {data['namespace']!r} (give its path or id)."
                )
            else:
                data["namespace"] = key
        if data.get("url"):  # a user's or namespace's webhook follows their rules
            try:
                validate_target_url(data["url"], user_supplied=scope != Scope.SERVER)
            except ValidationError as exc:
                self.add_error("url", exc)
        for field in ("name", "basic_auth_username"):
            if any(c in data.get(field, "") for c in "\r\n"):
                self.add_error(field, "This may not contain line breaks.")
        if ":" in data.get("basic_auth_username", ""):
            self.add_error("basic_auth_username", "A basic-auth username may not contain ':'.")
        if scope and "event_types" in data:
            self._receives_something(data["event_types"], scope)
        return data

    def _receives_something(self, chosen: list[str], scope: str) -> None:
        """A webhook with no event types, or only types its scope never gets, would
        never receive anything: refused, saying why."""
        if not chosen:
            self.add_error("event_types", "Pick at least one event type, or All events.")
            return
        if ALL_EVENTS in chosen:
            return
        wrong = [t for t in chosen if scope not in catalog.get(t).scopes]
        if len(wrong) == len(chosen):
            self.add_error(
                "event_types",
                f"A {scope} webhook never receives {', '.join(wrong)}; pick event types of "
                "its scope.",
            )

    def save(self, commit: bool = True) -> Webhook:
        webhook: Webhook = super().save(commit=False)
        webhook.event_types = list(self.cleaned_data.get("event_types") or [])
        webhook.headers = self.cleaned_data.get("headers_text") or {}
        if self.cleaned_data.get("new_secret"):
            webhook.secret = self.cleaned_data["new_secret"]
        elif not webhook.secret:
            webhook.secret = webhook_secrets.generate_secret()
        if self.cleaned_data.get("clear_basic_auth_password"):
            webhook.basic_auth_password = ""
        elif self.cleaned_data.get("new_basic_auth_password"):
            webhook.basic_auth_password = self.cleaned_data["new_basic_auth_password"]
        if commit:
            webhook.save()
        return webhook


class ReplayForm(forms.Form):
    """Which finished deliveries of a webhook to send again."""

    since = forms.DateTimeField(
        required=False,
        help_text="Created at or after (YYYY-MM-DD HH:MM, UTC). Blank: from the beginning.",
    )
    until = forms.DateTimeField(required=False, help_text="Created before. Blank: until now.")
    statuses = forms.MultipleChoiceField(
        choices=[("failed", "Failed"), ("skipped", "Skipped (while disabled)")],
        initial=["failed", "skipped"],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means both.",
    )
    event_type = forms.ChoiceField(required=False, choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_type"].choices = [("", "Any event type")] + [
            (t.name, t.name) for t in catalog.event_types()
        ]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise ValidationError("'Since' must be before 'until'.")
        data["statuses"] = data.get("statuses") or ["failed", "skipped"]
        return data


class SlotForm(forms.Form):
    """One named server hook: where it goes and what it sends."""

    url = forms.CharField(
        label="URL",
        required=False,
        max_length=2000,
        widget=forms.URLInput(attrs={"class": "vURLField wide-url",
                                     "placeholder": "https://hooks.example.com/…"}),
    )  # fmt: skip
    data = forms.CharField(
        label="JSON data",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
    )

    def __init__(self, *args, blank_data: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        sends = f"sends {blank_data}" if blank_data else "sends the event's own payload"
        self.fields["data"].help_text = f"Blank {sends}; %tag% placeholders are filled in."

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url", "").strip()
        return validate_target_url(url) if url else ""

    def clean_data(self) -> str:
        return validate_template(self.cleaned_data.get("data", ""))
