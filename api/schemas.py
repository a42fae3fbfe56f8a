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
