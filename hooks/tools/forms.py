"""Validation of webhook configuration: bad input gets a clear message and saves nothing."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from hooks import catalog, scopes
from hooks.models import ALL_EVENTS, Scope, Webhook
from hooks.outbox import filters
from hooks.outgoing.request import MASK
from hooks.tools import configure


def validate_target_url(url: str, *, user_supplied: bool = False) -> str:
    """URL rules shared by every form that takes a URL (hooks.configure's)."""
    return configure.check_url(url, user_supplied=user_supplied)


def validate_secret(secret: str) -> str:
    """A secret as pasted ('whsec_' + base64 of 24-64 bytes, or any 16-256 printable
    characters), or a ValidationError."""
    return configure.check_secret(secret)


def validate_payload_filter(text: str) -> dict | None:
    """A payload filter as JSON text (blank: none), or a ValidationError saying where."""
    if not text.strip():
        return None
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"The filter is not valid JSON: {exc}.") from None
    except RecursionError:  # Python's parser gives up near a thousand levels
        raise ValidationError(
            f"The filter nests too deeply: at most {filters.MAX_DEPTH} levels."
        ) from None
    return configure.check_filter(spec)


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value` lines; a value of ******** keeps the stored one (configure checks
    the names and values)."""
    headers: dict[str, str] = {}
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        raise ValidationError("Headers may not contain a bare carriage return (CR).")
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValidationError(f"Line {number}: write headers as 'Name: value'.")
        headers[name.strip()] = value.strip()
    return headers


def password_change(new: str | None, *, remove: bool | None) -> dict[str, str]:
    """A write-only password's change: removed, replaced, or (blank) kept."""
    if remove:
        return {"basic_auth_password": ""}
    return {"basic_auth_password": new} if new else {}


class WebhookConfigForm(forms.Form):
    """What every webhook form shares: the secret's two fields (what to do with it, and
    the secret to paste) and the way to hooks.configure. A form calls
    `secret_fields_for(webhook)` in its __init__, `plan(webhook, changes)` in its clean
    (errors land on its fields) and `self.plan.save()` in its save."""

    plan: configure.Plan | None = None

    secret_action = forms.ChoiceField(
        label="Secret",
        choices=(),
        required=False,
        # radiolist: in the admin each choice on its line, not squeezed to a label's width
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )  # not sent: keep
    pasted_secret = forms.CharField(
        label="Paste a secret",
        required=False,
        max_length=300,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=configure.SECRET_HELP,
    )

    def secret_fields_for(self, webhook: Webhook | None) -> None:
        exists = webhook is not None and webhook.pk is not None
        has_secret = exists and bool(webhook.secret)
        field = self.fields["secret_action"]
        field.choices = [
            *([(configure.KEEP, "Keep the current secret" if has_secret
                else "Keep it unsigned")] if exists else []),
            (configure.GENERATE, "Generate a new secret (shown once)"),
            (configure.PASTE, "Use the secret I paste below"),
            (configure.REMOVE, "Remove the secret: requests are not signed"
             if has_secret else "No secret: requests are not signed"),
        ]  # fmt: skip
        field.initial = configure.KEEP if exists else configure.GENERATE
        self.initial.setdefault("secret_action", field.initial)

    def secret_change(self) -> configure.SecretChange:
        action = self.cleaned_data.get("secret_action") or configure.KEEP
        pasted = self.cleaned_data.get("pasted_secret", "")
        if pasted and action == configure.KEEP:
            action = configure.PASTE  # a secret pasted is a secret meant
        elif pasted and action != configure.PASTE:
            self.add_error("pasted_secret", "Either paste a secret or choose another option.")
        return configure.SecretChange(action, pasted)

    def plan_change(self, webhook: Webhook, changes: dict, names: dict[str, str]) -> None:
        """Check `changes` (with the secret's) into `self.plan`; hooks.configure's errors
        go on this form's fields (`names`: configure's field -> ours)."""
        try:
            self.plan = configure.prepare_webhook(
                webhook, {**changes, "secret": self.secret_change()}
            )
        except ValidationError as exc:
            self.add_configure_errors(exc, names)

    password_change = staticmethod(password_change)

    def add_configure_errors(self, exc: ValidationError, names: dict[str, str]) -> None:
        for field, messages in exc.message_dict.items():
            if field == "secret":
                ours = (
                    "pasted_secret" if self.cleaned_data.get("pasted_secret") else "secret_action"
                )
            else:
                ours = names.get(field, field)
            self.add_error(ours if ours in self.fields else None, messages)


class EventTypeCheckboxes(forms.CheckboxSelectMultiple):
    """Event types by name, grouped by source; each says which scopes receive it
    (data-scopes: the add form shows only the chosen scope's) and what it is (title)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value == ALL_EVENTS:
            option["attrs"]["data-scopes"] = " ".join(Scope.values)
            return option
        try:
            spec = catalog.get(value)
        except catalog.UnknownEventType:
            return option
        option["attrs"].update({"data-scopes": " ".join(spec.scopes), "title": spec.description})
        return option


def event_type_choices(scope: str | None, current: list[str] = ()) -> list:
    """All events of the scope, then its event types by source (every scope's: None);
    a type another page owns (route.called) only where the webhook already has it."""
    groups = [
        (group, [(name, name) for name, _ in names])
        for group, names in catalog.grouped_choices(scope)
    ]
    owned = [(name, name) for name in current if catalog.kind_of([name])]
    return [("all", [(ALL_EVENTS, "All events of its scope, now and later")]), *groups,
            *([("its own", owned)] if owned else [])]  # fmt: skip


class WebhookForm(WebhookConfigForm, forms.ModelForm):
    """The admin's form of a webhook of any scope (hooks.configure checks and stores)."""

    event_types = forms.MultipleChoiceField(choices=(), required=False, widget=EventTypeCheckboxes)
    headers_text = forms.CharField(
        label="Custom headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "X-Api-Key: value"}),
        help_text="One 'Name: value' per line. Stored values show as ******** and are kept.",
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

    # Credentials in a text area (header values): masked wherever a form's fields are
    # shown (routes.writeonly reads it; the password inputs count without being named).
    credential_fields = ("headers_text",)
    # This form's fields under hooks.configure's names.
    CONFIGURE_NAMES = {"events": "event_types", "headers": "headers_text",
                       "basic_auth_password": "new_basic_auth_password"}  # fmt: skip
    PLAIN = ("name", "url", "active", "format", "data_template", "timeout", "verify_tls",
             "follow_redirects", "ordered", "github_signature", "djinn_headers",
             "basic_auth_username", "rate_limit", "rate_burst", "max_in_flight")  # fmt: skip

    class Meta:
        model = Webhook
        fields = [
            "name", "url", "active", "scope", "owner", "namespace", "event_types", "payload_filter",
            "format", "data_template", "timeout", "verify_tls", "follow_redirects", "ordered",
            "github_signature", "djinn_headers", "basic_auth_username", "rate_limit", "rate_burst",
            "max_in_flight",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A webhook keeps its scope: its page offers only what that scope receives.
        self.fields["event_types"].choices = event_type_choices(
            self.instance.scope if self.instance.pk else None, self.instance.event_types or []
        )
        self.fields["event_types"].initial = list(self.instance.event_types or [])
        if self.instance.payload_filter is not None:
            self.initial["payload_filter"] = json.dumps(self.instance.payload_filter, indent=2)
        self.fields["headers_text"].initial = "\n".join(
            f"{name}: {MASK}" for name in (self.instance.headers or {})
        )
        if "name" in self.fields:
            self.fields["name"].required = False
            self.fields["name"].help_text = "Blank: the URL's host."
        self.secret_fields_for(self.instance)
        self.saved: configure.Saved | None = None

    def clean_payload_filter(self):
        return validate_payload_filter(self.cleaned_data.get("payload_filter", ""))

    def clean_headers_text(self) -> dict[str, str]:
        return parse_headers(self.cleaned_data.get("headers_text", ""))

    def clean(self):
        data = super().clean()
        if self.instance.pk is None:
            self._belongs_to(data)
        changes = {name: data[name] for name in self.PLAIN if name in data and name in self.fields}
        for ours, theirs in (("event_types", "events"), ("payload_filter", "payload_filter"),
                             ("headers_text", "headers")):  # fmt: skip
            if ours in data and ours in self.fields:
                changes[theirs] = data[ours]
        changes.update(password_change(data.get("new_basic_auth_password"),
                                       remove=data.get("clear_basic_auth_password")))  # fmt: skip
        self.plan_change(self.instance, changes, self.CONFIGURE_NAMES)
        return data

    def _belongs_to(self, data: dict) -> None:
        """A new webhook's scope and its user or namespace (fixed once it exists)."""
        scope = data.get("scope") or Scope.SERVER
        self.instance.scope = scope
        if scope == Scope.USER and not data.get("owner"):
            self.add_error("owner", "A user webhook needs its user.")
        if scope != Scope.NAMESPACE:
            data["namespace"] = ""
        elif not data.get("namespace"):
            self.add_error("namespace", "A namespace webhook needs its namespace.")
        else:
            key = scopes.find_namespace(data["namespace"].strip())
            if key is None:
                self.add_error(
                    "namespace", f"No namespace {data['namespace']!r} (give its path or id)."
                )
            data["namespace"] = key or ""
        self.instance.owner = data.get("owner") if scope == Scope.USER else None
        self.instance.namespace = data["namespace"]

    def save(self, commit: bool = True, by=None) -> Webhook:
        """Stores through hooks.configure whatever `commit` says (the admin's save_model
        stores nothing more); `self.saved` tells what changed and a secret to show once.
        `by`: the user saving it (named in `webhook.changed`)."""
        if self.plan is None:
            raise ValueError("The form is not valid; nothing to save.")
        self.saved = self.plan.save(by)
        self.save_m2m = self._save_m2m
        return self.saved.webhook


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
        help_text="Neither ticked means both.",
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
        return configure.check_template(self.cleaned_data.get("data", ""))
