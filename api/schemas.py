"""The shapes the API accepts and answers (pydantic, through django-ninja): the OpenAPI
document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ninja import Schema
from pydantic import ConfigDict, Field


class Error(Schema):
    error: str = Field(examples=["type: Field required."])
    field: str | None = Field(None, description="Where the problem is, when it is one field.")


class EventIn(Schema):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="A declared event type.", examples=["invoice.paid"])
    payload: dict[str, Any] = Field(description="The event's JSON object, sent as it is.")
    namespace: str | None = Field(
        None, description="A namespace's path: its webhooks receive the event too."
    )
    user: int | str | None = Field(
        None, description="A user's id, email or user name: their webhook receives it too."
    )


class EventOut(Schema):
    id: UUID = Field(description="The event's id (each delivery has its own webhook-id).")
    type: str
    created_at: datetime
    deliveries: int = Field(description="How many webhooks the event is being delivered to.")


class WebhookOut(Schema):
    id: int
    scope: str = Field(description="server, user (a notification webhook) or namespace.")
    namespace: str | None = Field(None, description="The namespace's path (namespace scope).")
    name: str
    url: str
    active: bool
    disabled: bool = Field(description="Disabled by the hub because its receiver kept failing.")
    disabled_reason: str
    events: list[str] = Field(description='Subscribed event types; "*" is every one of its scope.')
    payload_filter: dict[str, Any] | None
    verify_tls: bool
    signed: bool = Field(description="It has a signing secret (never shown after creation).")
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str | None = Field(None, description="A generated secret, shown this once.")


class WebhookIn(Schema):
    model_config = ConfigDict(extra="forbid")

    scope: str = Field("namespace", description="namespace, or server (staff).")
    namespace: str | None = Field(None, description="The namespace's path (namespace scope).")
    url: str
    name: str = ""
    events: list[str] = Field(default_factory=lambda: ["*"])
    payload_filter: dict[str, Any] | None = None
    secret: str | None = Field(None, description="A whsec_ secret; absent: one is generated.")
    active: bool = True
    verify_tls: bool = True
    djinn_headers: bool = False


class WebhookPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    name: str | None = None
    events: list[str] | None = None
    payload_filter: dict[str, Any] | None = None
    secret: str | None = Field(None, description="A new whsec_ secret.")
    active: bool | None = None
    verify_tls: bool | None = None
    djinn_headers: bool | None = None


class AttemptOut(Schema):
    number: int
    trigger: str
    started_at: datetime
    duration_ms: float
    url: str
    request_headers: dict[str, Any] = Field(description="As sent; credentials masked.")
    request_body: str
    response_status: int | None
    response_headers: dict[str, Any]
    response_body: str
    error: str
    succeeded: bool


class DeliveryOut(Schema):
    id: UUID = Field(description="The delivery's webhook-id.")
    event_type: str
    event_id: UUID
    status: str
    attempts: list[AttemptOut]
    created_at: datetime
    completed_at: datetime | None


class Queued(Schema):
    queued: int = Field(description="How many deliveries were queued for another attempt.")


class ReplayIn(Schema):
    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None
    until: datetime | None = None
    statuses: list[str] = Field(default_factory=lambda: ["failed", "skipped"])
    event_type: str | None = None


class TestResult(Schema):
    ok: bool
    summary: str
    response_status: int | None
    response_body: str


class Rotated(Schema):
    secret: str = Field(description="The new secret, shown this once.")
    previous_valid_until: datetime | None = Field(
        None, description="The old secret keeps signing until then."
    )


class NotificationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Blank removes the notification webhook.")
    signed: bool = False
    shape: str | None = Field(
        None, description="auto (Open WebUI's docs) or open_webui (its code)."
    )
