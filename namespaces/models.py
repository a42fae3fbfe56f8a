"""Namespaces (Djinn CI): an owner, collaborators, invites, and the resources members
keep in them (variables, SSH keys). Sub-namespaces share their root's members."""

from __future__ import annotations

import uuid

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower

from hooks import EncryptedTextField

MAX_DEPTH = 20  # as Djinn: a namespace path has at most 20 levels
MASK = "********"  # a masked variable's value, wherever it would be shown
PAYLOAD_MASK = "xxxxxx"  # ... and in a payload, as Djinn sends it (variable.MaskString)


class Namespace(models.Model):
    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private (members only)"
        INTERNAL = "internal", "Internal (every signed-in user may look)"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_namespaces"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="descendants",
        help_text="The top namespace whose members this one shares (blank: this is a root).",
    )  # fmt: skip
    name = models.CharField(max_length=32)
    path = models.CharField(max_length=700, unique=True)
    description = models.CharField(max_length=255, blank=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    builds = models.PositiveIntegerField(default=0, help_text="Jobs submitted into it so far.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path

    @property
    def top(self) -> Namespace:
        return self.root or self

    @property
    def key(self) -> str:
        """What the engine scopes this namespace's webhooks and events by."""
        return str(self.pk)

    def next_build_number(self) -> int:
        """This namespace's next job number (1, 2, …), safe under concurrent submits."""
        Namespace.objects.filter(pk=self.pk).update(builds=F("builds") + 1)
        return Namespace.objects.values_list("builds", flat=True).get(pk=self.pk)

    def as_payload(self) -> dict:
        return {"id": self.pk, "name": self.name, "path": self.path,
                "description": self.description, "visibility": self.visibility,
                "owner": {"id": self.owner_id, "name": self.owner.display_name},
                "url": settings.SITE_URL + f"/namespaces/{self.path}/"}  # fmt: skip


class Collaborator(models.Model):
    """A member of a root namespace (and so of its sub-namespaces) who is not its owner."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="collaborators")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collaborations"
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [models.UniqueConstraint(fields=["namespace", "user"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.namespace}"


class Invite(models.Model):
    """An invite to the address its owner typed. `invitee` is the account that had that
    address when it was sent, or none: such an invite is kept and listed all the same,
    so the owner's page never tells which addresses have an account."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="invites")
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invites_sent"
    )
    email = models.EmailField(help_text="The address as the inviter typed it.")
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
        related_name="invites",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), "namespace", name="one_invite_per_address")
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.namespace}"

    def as_payload(self) -> dict:
        """Only what the inviter knows: their own details and the address they typed.
        When the invitee answers, they show who they are (`answered_payload`)."""
        return {"namespace": self.namespace.as_payload(), "inviter": person(self.inviter),
                "invitee": {"email": self.email}}  # fmt: skip

    def answered_payload(self) -> dict:
        invitee = {**person(self.invitee), "email": self.email}  # their address as typed
        return {**self.as_payload(), "invitee": invitee}


class SentInvite(models.Model):
    """One invite sent, kept for the per-user limit (INVITE_LIMIT_PER_HOUR) after the
    invite itself is answered and gone, so reject-and-invite-again cycles count."""

    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    sent_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"an invite from {self.inviter_id} at {self.sent_at:%Y-%m-%d %H:%M}"


def person(user) -> dict:
    return {"id": user.pk, "name": user.display_name, "email": user.email}


class Resource(models.Model):
    """What members keep in a namespace; each change is an event named after its kind."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def common_payload(self) -> dict:
        return {"id": self.pk, "namespace": {"id": self.namespace_id, "path": self.namespace.path},
                "author": person(self.author) if self.author else None,
                "created_at": self.created_at.isoformat() if self.created_at else None}  # fmt: skip


class Variable(Resource):
    key = models.CharField(max_length=64)
    # Encrypted at rest like webhook secrets; a masked value is never shown or sent again.
    value = EncryptedTextField(max_length=4096)
    masked = models.BooleanField(
        default=False, help_text="Never shown again after saving, never sent in a payload."
    )

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["namespace", "key"], name="variable_key")]

    def __str__(self) -> str:
        return self.key

    @property
    def shown_value(self) -> str:
        return MASK if self.masked else self.value

    def as_payload(self) -> dict:
        # Djinn sends a masked variable's value as its mask, never the value.
        value = PAYLOAD_MASK if self.masked else self.value
        return {**self.common_payload(), "key": self.key, "masked": self.masked, "value": value}


class SSHKey(Resource):
    name = models.CharField(max_length=64)
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=80)

    class Meta:
        ordering = ["name"]
        verbose_name, verbose_name_plural = "SSH key", "SSH keys"
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="ssh_key_name")]

    def __str__(self) -> str:
        return self.name

    def as_payload(self) -> dict:
        return {**self.common_payload(), "name": self.name, "fingerprint": self.fingerprint,
                "public_key": self.public_key}  # fmt: skip


def valid_cron(expression: str) -> bool:
    """Five fields (minute hour day month weekday), as cron has them; croniter also takes
    a sixth (seconds), which django-q2's once-a-tick scheduler cannot honour."""
    return len(expression.split()) == 5 and croniter.is_valid(expression)


class Cron(Resource):
    """A job submitted into the namespace on a schedule, through a django-q2 schedule."""

    class Every(models.TextChoices):
        DAILY = "daily", "Daily (00:00)"
        WEEKLY = "weekly", "Weekly (Monday 00:00)"
        MONTHLY = "monthly", "Monthly (the 1st, 00:00)"
        CUSTOM = "custom", "Cron expression"

    EXPRESSIONS = {"daily": "0 0 * * *", "weekly": "0 0 * * 1", "monthly": "0 0 1 * *"}

    name = models.CharField(max_length=64)
    every = models.CharField("schedule", max_length=8, choices=Every.choices, default=Every.DAILY)
    expression = models.CharField(
        "cron expression", max_length=100, blank=True,
        help_text="Five fields (minute hour day month weekday), in TIME_ZONE; for 'Cron "
        "expression' only.",
    )  # fmt: skip
    endpoint = models.ForeignKey("jobs.Endpoint", on_delete=models.PROTECT, related_name="+")
    input = models.JSONField(default=dict, blank=True)
    schedule = models.OneToOneField(
        "django_q.Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        verbose_name, verbose_name_plural = "cron job", "cron jobs"
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="cron_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The same rules on the members' page and in the admin."""
        self.expression = " ".join(self.expression.split())
        if self.every == self.Every.CUSTOM:
            if not self.expression:
                raise ValidationError(
                    {"expression": "Give a cron expression, e.g. '30 2 * * 1-5'."}
                )
            if not valid_cron(self.expression):
                raise ValidationError({"expression": f"{self.expression!r} is not a cron "
                                       "expression: five fields, minute hour day month weekday."})  # fmt: skip
        elif self.expression:
            raise ValidationError(
                {"expression": "Only for the 'Cron expression' schedule; leave it blank."}
            )

    @property
    def cron(self) -> str:
        return self.expression if self.every == self.Every.CUSTOM else self.EXPRESSIONS[self.every]

    @property
    def next_run(self):
        return self.schedule.next_run if self.schedule else None

    def as_payload(self) -> dict:
        next_run = self.next_run
        return {**self.common_payload(), "name": self.name, "schedule": self.every,
                "expression": self.cron, "endpoint": self.endpoint.name, "input": self.input,
                "next_run": next_run.isoformat() if next_run else None}  # fmt: skip


def _stored_at(item: StoredFile, filename: str) -> str:
    # Never the uploaded name: a random one in the namespace's folder.
    return f"namespaces/{item.namespace_id}/{item.folder}/{uuid.uuid4().hex}"


class StoredFile(Resource):
    """A named file kept with Django's storage API, downloaded by members only."""

    folder = ""
    name = models.CharField(max_length=100)
    file = models.FileField(upload_to=_stored_at, max_length=300)
    size = models.PositiveBigIntegerField(default=0)
    content_type = models.CharField(max_length=100, blank=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_payload(self) -> dict:
        return {**self.common_payload(), "name": self.name, "size": self.size,
                "content_type": self.content_type}  # fmt: skip


class Image(StoredFile):
    folder = "images"

    class Meta(StoredFile.Meta):
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="image_name")]


class Object(StoredFile):
    folder = "objects"

    class Meta(StoredFile.Meta):
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="object_name")]
