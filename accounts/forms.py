"""Account forms: signup, settings, tokens, the notification webhook."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError

import hooks
from accounts import notification
from accounts.models import ApiToken
from hooks.models import ALL_EVENTS

User = get_user_model()


def email_taken(email: str, exclude_pk=None) -> bool:
    return User.objects.filter(email__iexact=email).exclude(pk=exclude_pk).exists()


class SignupForm(forms.Form):
    name = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Tell us what to call you.")
        return name

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if email_taken(email):
            raise ValidationError("An account with this email already exists. Log in instead?")
        return email

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("email"):
            candidate = User(username=data["email"], email=data["email"], name=data.get("name", ""))
            try:
                password_validation.validate_password(data["password"], candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return data

    def save(self) -> User:
        data = self.cleaned_data
        return User.objects.create_user(
            username=data["email"].lower(), email=data["email"], password=data["password"],
            name=data["name"],
        )  # fmt: skip


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["name", "email"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if not email:
            raise ValidationError("An email address is required.")
        if email_taken(email, exclude_pk=self.instance.pk):
            raise ValidationError("Another account uses this email.")
        return email


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI runner'.")

    def __init__(self, *args, user, **kwargs):
        # Its own ids: it sits on the settings page beside the profile form's `name`.
        super().__init__(*args, auto_id="id_token_%s", **kwargs)
        self.user = user

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if ApiToken.objects.filter(user=self.user, name=name).exists():
            raise ValidationError("You already have a token with this name.")
        return name


class NotificationWebhookForm(hooks.WebhookConfigForm):
    """The settings page's notification webhook (hooks.configure checks and stores it)."""

    url = forms.CharField(
        label="Notification webhook URL",
        max_length=2000,
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.slack.com/services/…"}),
        help_text="We tell this URL when one of your long jobs finishes while you are away. "
        "Blank turns it off.",
    )
    shape = forms.ChoiceField(
        label="Payload",
        choices=notification.SHAPES,
        initial=notification.SHAPES[0][0],
        required=False,
        help_text="Open WebUI's documentation and its code send different JSON; pick what your "
        "receiver was built for. Chat URLs (Discord, Slack, Google Chat, Teams) get a chat "
        "message with the first choice.",
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What is sent here: your jobs that finish while you are away (job.finished), "
        "and events this hub's integrations address to you through its API (declared by "
        "staff). Tick the ones you want, or everything.",
    )
    follow_redirects = forms.BooleanField(
        label="Follow redirects",
        required=False,
        help_text="If your receiver moved and answers with a redirect, follow it (at most 5). "
        "Off: a redirect counts as a failure.",
    )
    rate_limit = forms.FloatField(
        label="Rate limit (requests per second)",
        required=False,
        help_text="At most this many requests per second to your URL. Blank: none (Discord and "
        "Slack URLs get their platforms' own limits).",
    )
    rate_burst = forms.IntegerField(
        label="Burst",
        required=False,
        help_text="How many may go at once after a quiet spell, within the rate. Blank: one "
        "second's worth.",
    )
    max_in_flight = forms.IntegerField(
        label="Most in flight",
        required=False,
        help_text="At most this many requests waiting for your receiver's answer at once. "
        "Blank: the hub's default.",
    )
    ordered = forms.BooleanField(
        label="Order per subject",
        required=False,
        help_text="Send the events about one thing (a job, your account) one at a time, in "
        "order: the next waits until the previous one was received or gave up. Events about "
        "other things go on meanwhile.",
    )
    field_order = ["url", "events", "secret_action", "pasted_secret", "shape", "follow_redirects",
                   "ordered", *notification.PACE_FIELDS]  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        hook = notification.webhook_of(user)
        self.fields["events"].choices = notification.event_choices()
        self.initial.setdefault("events", list(hook.event_types) if hook else [ALL_EVENTS])
        if hook is not None:
            self.initial.setdefault("url", hook.url)
            self.initial.setdefault("shape", notification.shape_of(hook))
            self.initial.setdefault("follow_redirects", hook.follow_redirects)
            self.initial.setdefault("ordered", hook.ordered)
            for name in notification.PACE_FIELDS:
                self.initial.setdefault(name, getattr(hook, name))
        self.secret_fields_for(hook)

    def clean_url(self) -> str:
        return self.cleaned_data.get("url", "").strip()

    def clean(self):
        data = super().clean()
        if "url" not in data:
            return data
        try:
            self.plan = notification.prepare(
                self.user,
                data["url"],
                self.secret_change(),
                data.get("shape") or None,
                data.get("events") or None,
                data.get("follow_redirects", False),
                data.get("ordered", False),
                {name: data.get(name) for name in notification.PACE_FIELDS},
            )
        except ValidationError as exc:
            self.add_configure_errors(exc, {})
        return data

    def save(self):
        """The webhook (None: removed) and a secret generated now, to show once."""
        return notification.apply(self.user, self.plan)
