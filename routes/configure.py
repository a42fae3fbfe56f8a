"""Creating and changing a route webhook: its engine webhook through hooks'
configuration service (the same rules as every webhook page), its route events here.
The admin's form and the management API both store through `store`."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

import hooks
from routes.events import CALLED, SAMPLE_CALL
from routes.models import RouteEvent, RouteWebhook


def engine_webhook(route: RouteWebhook | None):
    """The route webhook's engine webhook, or a new server one for a new route webhook."""
    return route.webhook if route is not None else hooks.new_webhook(hooks.SERVER)


def engine_changes(changes: dict) -> dict:
    """The engine webhook's changes: a route webhook receives `route.called` only."""
    return {**changes, "events": [CALLED]}


def prepare(route: RouteWebhook | None, changes: dict):
    """The engine webhook's checked change (a ValidationError by field when wrong)."""
    return hooks.prepare_webhook(engine_webhook(route), engine_changes(changes))


@transaction.atomic
def store(route: RouteWebhook | None, plan, events: Iterable[RouteEvent] | None, by=None):
    """Store the prepared engine webhook, then the route side and its route events
    (None: unchanged), `by` the user doing it. Returns the route webhook and what the
    engine stored."""
    saved = plan.save(by)
    route = route or RouteWebhook()
    route.webhook = saved.webhook
    route.save()
    if events is not None:
        route.events.set(events)
    return route, saved


def send_test(route: RouteWebhook):
    """A sample call to the route webhook now (APIO's "Generate test event"); the attempt."""
    [attempt] = hooks.send_now(CALLED, SAMPLE_CALL, webhooks=[route.webhook])
    return attempt
