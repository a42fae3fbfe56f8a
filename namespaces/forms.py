"""Namespace forms: the namespace, invites, variables, SSH keys and webhooks. Bad input
gets a field error and saves nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import timedelta

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

import hooks
from apikit import jsonbody
from hooks import NAMESPACE
from hooks.models import ALL_EVENTS, Webhook
from namespaces import cron as schedules
from namespaces import uploads
from namespaces.models import (
    MASK,
    MAX_DEPTH,
    Cron,
    Image,
    Invite,
    Namespace,
    Object,
    SentInvite,
    SSHKey,
    Variable,
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Page names under /namespaces/<path>/: a namespace may not be called one of these.
RESERVED = {"new", "invites", "edit", "delete", "members", "invite", "jobs", "variables",
            "keys", "cron", "images", "objects", "webhooks"}  # fmt: skip
VARIABLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _no_line_breaks(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValidationError("This may not contain line breaks.")
    return value


class NamespaceForm(forms.ModelForm):
    class Meta:
        model = Namespace
        fields = ["name", "description", "visibility"]
        help_texts = {"name": "Letters, digits, '-' and '_'; it becomes the namespace's path."}

    def __init__(self, *args, owner, parent: Namespace | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner, self.parent = owner, parent
        if self.instance.pk:  # the path is its address: fixed once created
            del self.fields["name"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME.match(name):
            raise ValidationError(
                "Use letters, digits, '-' and '_' (starting with a letter or digit)."
            )
        if name.lower() in RESERVED:
            raise ValidationError(f"'{name}' is the name of a page; choose another name.")
        if self.parent and self.parent.path.count("/") + 1 >= MAX_DEPTH:
            raise ValidationError(f"Namespaces nest at most {MAX_DEPTH} levels deep.")
        path = f"{self.parent.path}/{name}" if self.parent else name
        if Namespace.objects.filter(path__iexact=path).exists():
            raise ValidationError(f"A namespace {path} already exists.")
        return name

    def clean_description(self) -> str:
        return _no_line_breaks(self.cleaned_data.get("description", "").strip())

    def save(self, commit: bool = True) -> Namespace:
        namespace: Namespace = super().save(commit=False)
        if not namespace.pk:
            namespace.parent = self.parent
            namespace.root = self.parent.top if self.parent else None
            namespace.owner = self.parent.top.owner if self.parent else self.owner
            namespace.path = (
                f"{self.parent.path}/{namespace.name}" if self.parent else namespace.name
            )
        if commit:
            namespace.save()
        return namespace


class InviteForm(forms.Form):
    """An invite to an exact email address. Every error is about what the owner typed or
    already sees on the members page (the owner's and collaborators' addresses, the
    invites waiting), so no answer says whether an address has an account here."""

    who = forms.EmailField(
        label="Invite by email", max_length=254,
        help_text="Their exact email address. Whether it has an account here is not shown.",
    )  # fmt: skip

    def __init__(self, *args, namespace: Namespace, inviter, **kwargs):
        super().__init__(*args, **kwargs)
        self.namespace, self.inviter = namespace.top, inviter

    def clean_who(self) -> str:
        email = self.cleaned_data["who"]
        if self.namespace.owner.email.lower() == email.lower():
            raise ValidationError("The owner is already a member.")
        if self.namespace.collaborators.filter(user__email__iexact=email).exists():
            raise ValidationError(f"{email} is already a collaborator.")
        if self.namespace.invites.filter(email__iexact=email).exists():
            raise ValidationError(f"{email} has already been invited.")
        return email

    def clean(self):
        limit = settings.INVITE_LIMIT_PER_HOUR
        if sent_in_the_last_hour(self.inviter) >= limit:
            raise ValidationError(
                f"You have sent {limit} invites in the last hour, the most you may "
                "(INVITE_LIMIT_PER_HOUR); try again later."
            )
        return super().clean()

    def save(self) -> Invite:
        """The invite, to the account with that address if there is one; kept either way."""
        email = self.cleaned_data["who"]
        invitee = get_user_model().objects.filter(is_active=True, email__iexact=email).first()
        now = timezone.now()
        SentInvite.objects.filter(inviter=self.inviter, sent_at__lt=now - INVITE_WINDOW).delete()
        SentInvite.objects.create(inviter=self.inviter, sent_at=now)
        return Invite.objects.create(
            namespace=self.namespace, inviter=self.inviter, email=email, invitee=invitee
        )


INVITE_WINDOW = timedelta(hours=1)


def sent_in_the_last_hour(inviter) -> int:
    since = timezone.now() - INVITE_WINDOW
    return SentInvite.objects.filter(inviter=inviter, sent_at__gte=since).count()


class ResourceForm(forms.ModelForm):
    """A namespace's resource: its namespace and author are set by the page, not the form."""

    def __init__(self, *args, namespace: Namespace, author, **kwargs):
        super().__init__(*args, **kwargs)
        self.namespace, self.author = namespace, author

    def _unique(self, field: str, value: str, what: str) -> str:
        taken = self._meta.model.objects.filter(namespace=self.namespace, **{field: value})
        if taken.exclude(pk=self.instance.pk).exists():
            raise ValidationError(f"This namespace already has {what} {value!r}.")
        return value

    def save(self, commit: bool = True):
        item = super().save(commit=False)
        item.namespace = self.namespace
        if not item.pk:
            item.author = self.author
        if commit:
            item.save()
        return item


class VariableValueForm(forms.ModelForm):
    """A variable's value and its masking, one rule on the owners' page and in the admin:
    the value is write-only once masked (blank on edit keeps it), and unmasking needs the
    value given again, as Djinn's does, so unticking *masked* never reveals a secret."""

    value = forms.CharField(
        max_length=4096,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only once masked. Blank on edit keeps the current value; "
        "unmasking needs a new one.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.instance.masked:
            self.fields["value"].widget = forms.TextInput()
            self.initial["value"] = self.instance.value
        elif self.instance.pk:
            self.initial["value"] = ""

    def clean(self):
        data = super().clean()
        value = data.get("value", "")
        if not value and not self.instance.pk:
            self.add_error("value", "Give the variable a value.")
        if value == MASK:
            self.add_error("value", "Give the real value, not the mask.")
        if self.instance.pk and self.instance.masked and not data.get("masked") and not value:
            self.add_error("masked", "A masked value is never shown again: give a new value to "
                                     "unmask the variable.")  # fmt: skip
        if not value and self.instance.pk:
            data["value"] = Variable.objects.get(pk=self.instance.pk).value  # blank keeps it
        return data


class VariableForm(VariableValueForm, ResourceForm):
    class Meta:
        model = Variable
        fields = ["key", "value", "masked"]

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if not VARIABLE_KEY.match(key):
            raise ValidationError("A key is letters, digits and '_', not starting with a digit.")
        return self._unique("key", key, "a variable")


SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
                 "sk-ecdsa-sha2-nistp256@openssh.com")  # fmt: skip


# OpenSSH reads a public key or authorized_keys line of at most SSH_MAX_PUBKEY_BYTES
# (16384): a 16384-bit RSA key, the largest it makes, is ~2,800 characters, so this
# leaves room for any comment a real key carries.
MAX_PUBLIC_KEY = 16384


def parse_public_key(text: str) -> tuple[str, str]:
    """(the key as one normalised line, its SHA256 fingerprint), or a ValidationError that
    says what is wrong. Parsed by `cryptography`, which checks the key itself, not only
    its shape."""
    if len(text) > MAX_PUBLIC_KEY:
        raise ValidationError(
            f"This is {len(text)} characters; a public key line is at most {MAX_PUBLIC_KEY} "
            "(OpenSSH's own limit, room for its largest key, 16384-bit RSA, and a comment)."
        )
    text = " ".join(text.split())
    if "PRIVATE KEY" in text:
        raise ValidationError(
            "This is a private key. Paste the public key (the .pub file) and keep the private "
            "key to yourself."
        )
    parts = text.split(" ")
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValidationError(
            "Paste an OpenSSH public key: '<type> <base64> [comment]', with a type such as "
            "ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256."
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationError(
            "This public key does not decode; copy the whole line again."
        ) from None
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return text, fingerprint


class SSHKeyForm(ResourceForm):
    class Meta:
        model = SSHKey
        fields = ["name", "public_key"]
        widgets = {"public_key": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"public_key": "The public key only (e.g. the contents of id_ed25519.pub)."}

    def clean_name(self) -> str:
        name = _no_line_breaks(self.cleaned_data["name"].strip())
        return self._unique("name", name, "an SSH key")

    def clean_public_key(self) -> str:
        key, self.fingerprint = parse_public_key(self.cleaned_data["public_key"])
        return key

    def save(self, commit: bool = True) -> SSHKey:
        self.instance.fingerprint = self.fingerprint
        return super().save(commit)


class JobInputField(forms.JSONField):
    """A job's input as JSON, under the job API's rules: an object, within the payload
    limit, nested at most jsonbody.MAX_DEPTH levels (Django's field lets the parser's
    RecursionError through, a 500, on the way in and when the page shows it again)."""

    def to_python(self, value):
        try:
            value = super().to_python(value)
        except RecursionError:
            raise ValidationError(DEEP_INPUT) from None
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise ValidationError('The input must be a JSON object, e.g. {"prompt": "hi"}.')
        if jsonbody.deeper_than(value, jsonbody.MAX_DEPTH):
            raise ValidationError(DEEP_INPUT)
        limit = hooks.settings().max_payload_bytes
        if len(json.dumps(value)) > limit:
            raise ValidationError(f"The input is larger than {limit} bytes.")
        return value

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


DEEP_INPUT = f"The input nests objects and lists more than {jsonbody.MAX_DEPTH} levels deep."


class CronForm(ResourceForm):
    input = JobInputField(
        required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The job's input, a JSON object (as in POST /v2/<endpoint>/run).",
    )  # fmt: skip

    class Meta:
        model = Cron
        fields = ["name", "endpoint", "every", "expression", "input"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = self.fields["endpoint"].queryset.filter(active=True)
        self.fields["endpoint"].empty_label = None

    def clean_name(self) -> str:
        name = _no_line_breaks(self.cleaned_data["name"].strip())
        return self._unique("name", name, "a cron job")

    def save(self, commit: bool = True) -> Cron:
        # Whoever saves it last runs it: another member's schedule and input never run
        # as someone who did not write them (jobs.scheduled.run_cron).
        self.instance.author = self.author
        item = super().save(commit)
        if commit:
            schedules.sync(item)
        return item


class StoredFileForm(ResourceForm):
    """An image or object: a name and a file (on edit, only the name changes)."""

    class Meta:
        fields = ["name", "file"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            del self.fields["file"]
        else:
            self.fields["file"].help_text = f"At most {filesizeformat(uploads.file_limit())}."

    def clean_name(self) -> str:
        name = _no_line_breaks(self.cleaned_data["name"].strip())
        if "/" in name or "\\" in name:
            raise ValidationError("A name may not contain slashes.")
        return self._unique("name", name, f"an {self._meta.model._meta.verbose_name}")

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload and upload.size > uploads.file_limit():
            raise ValidationError(
                f"The file is {filesizeformat(upload.size)}; the limit is "
                f"{filesizeformat(uploads.file_limit())} (NAMESPACE_FILE_LIMIT)."
            )
        if upload is not None and upload.size == 0:
            raise ValidationError("The file is empty.")
        if upload is not None and (reason := uploads.over_quota(self.namespace, upload.size)):
            raise ValidationError(reason)
        return upload

    def save(self, commit: bool = True):
        upload = self.cleaned_data.get("file")
        if upload is not None:
            self.instance.size = upload.size
            self.instance.content_type = (getattr(upload, "content_type", "") or "")[:100]
        return super().save(commit)


class ImageForm(StoredFileForm):
    class Meta(StoredFileForm.Meta):
        model = Image


class ObjectForm(StoredFileForm):
    class Meta(StoredFileForm.Meta):
        model = Object


def namespace_event_choices() -> list[tuple[str, str]]:
    """Every namespace event, builds first (a test event is sent on request, not subscribed)."""
    names = [
        t.name for t in hooks.event_types() if NAMESPACE in t.scopes and t.name != "webhook.test"
    ]
    return [(name, name) for name in sorted(names, key=lambda n: (not n.startswith("build."), n))]


class NamespaceWebhookForm(hooks.WebhookConfigForm, forms.ModelForm):
    """A namespace's webhook as Djinn's form has it, plus its Djinn-headers option;
    hooks.configure checks and stores it."""

    name = forms.CharField(max_length=100, required=False, help_text="Blank: the URL's host.")
    all_events = forms.BooleanField(
        label="All events", required=False, help_text="Every namespace event, now and later."
    )
    events = forms.MultipleChoiceField(
        label="Or these events", choices=(), required=False, widget=forms.CheckboxSelectMultiple
    )
    payload_filter = forms.CharField(
        label="Payload filter",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"path": "status", "eq": "failed"}'}),
        help_text='Only events whose payload matches (docs/integrating.md, "Payload filters"). '
        "Blank: every event it subscribes to.",
    )  # fmt: skip

    class Meta:
        model = Webhook
        fields = [
            "name",
            "url",
            "verify_tls",
            "follow_redirects",
            "ordered",
            "active",
            "djinn_headers",
            "timeout",
            "rate_limit",
            "rate_burst",
            "max_in_flight",
        ]
        field_order = ["url", "name", "all_events", "events", "payload_filter", "secret_action",
                       "pasted_secret", "verify_tls", "follow_redirects", "ordered", "active",
                       "djinn_headers", "timeout", "rate_limit", "rate_burst",
                       "max_in_flight"]  # fmt: skip
        labels = {"url": "Payload URL", "verify_tls": "SSL verification",
                  "timeout": "Timeout (seconds)", "rate_limit": "Rate limit (requests per second)",
                  "max_in_flight": "Most in flight"}  # fmt: skip
        help_texts = {"follow_redirects": "As Djinn's Go client does: a moved receiver's "
                      "redirect is followed (at most 5; 307/308 send the same POST, 301/302/303 "
                      "a GET). Off: a redirect is a failure.",
                      "timeout": f"How long a request may take. Blank: {hooks.NAMESPACE_TIMEOUT:g}, "
                      "as Djinn's."}  # fmt: skip

    def __init__(self, *args, namespace: Namespace, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(self.Meta.field_order)
        self.namespace = namespace
        self.fields["events"].choices = namespace_event_choices()
        chosen = list(self.instance.event_types or [])
        self.initial.setdefault("all_events", ALL_EVENTS in chosen)
        self.initial.setdefault("events", [t for t in chosen if t != ALL_EVENTS])
        if self.instance.payload_filter is not None:
            self.initial.setdefault("payload_filter", json.dumps(self.instance.payload_filter))
        if self.instance.pk is None:
            self.instance = hooks.new_webhook(NAMESPACE, namespace=namespace.key)
            self.initial.setdefault("follow_redirects", self.instance.follow_redirects)
        self.secret_fields_for(self.instance)
        self.saved = None

    def clean_payload_filter(self) -> dict | None:
        return hooks.validate_payload_filter(self.cleaned_data.get("payload_filter", ""))

    def clean(self):
        data = super().clean()
        changes = {name: data[name] for name in ("url", "name", "verify_tls", "follow_redirects",
                                                 "ordered", "active", "djinn_headers",
                                                 "payload_filter", "timeout", "rate_limit",
                                                 "rate_burst", "max_in_flight")
                   if name in data}  # fmt: skip
        if "events" in data:
            changes["events"] = [ALL_EVENTS] if data.get("all_events") else data["events"]
        self.plan_change(self.instance, changes, {})
        return data

    def save(self, commit: bool = True, by=None) -> Webhook:
        self.saved = self.plan.save(by)
        return self.saved.webhook
