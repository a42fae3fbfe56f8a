"""'The usual way', for comparison only: one django-q2 task per delivery that POSTs with
`requests.post` (a new connection each time) and saves one history row — what most
Django projects write, and what django-webhook does with Celery."""

from __future__ import annotations

import requests

from hooks.models import Event


def post_and_record(url: str, body: bytes, headers: dict) -> int:
    response = requests.post(url, data=body, headers=headers, timeout=15)
    Event.objects.create(type="bench.usual", payload={"status": response.status_code})
    return response.status_code
