"""Every payload-filter example a person may copy (form placeholders, the docs) matches a
real payload of the event type it is shown for: the payload the hub emits when a real
job finishes, not an example written beside the filter."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model

from hooks.models import Event
from hooks.outbox import filters
from hooks.tools.forms import WebhookForm
from jobs import lifecycle
from jobs.models import Endpoint, Job
from namespaces.forms import NamespaceWebhookForm
from namespaces.models import Namespace
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


def _placeholder(form, field: str = "payload_filter") -> dict:
    return json.loads(form.fields[field].widget.attrs["placeholder"])


def _doc_filters(page: str) -> list[dict]:
    """The filters written in a docs page: JSON blocks and `"payload_filter": {...}`."""
    text = (ROOT / "docs" / page).read_text()
    found = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL)
             if '"path"' in b]  # fmt: skip
    for inline in re.findall(r'"payload_filter": (\{.*?\})\}', text):
        found.append(json.loads(inline))
    return found


def _finished_payloads(status: str) -> dict[str, dict]:
    """What the hub emitted, by event type, when a namespace's job ended in `status`."""
    owner = get_user_model().objects.create_user("ann", "ann@example.com", "pw", name="Ann")
    acme = Namespace.objects.create(owner=owner, name="acme", path="acme")
    job = Job.objects.create(endpoint=Endpoint.objects.get(name="echo"), user=owner,
                             namespace=acme, number=1, input={"prompt": "hi"},
                             webhook="https://example.com/done")  # fmt: skip
    lifecycle.finish(job, status, error="it broke" if status == "FAILED" else "")
    return {e.type: e.payload for e in Event.objects.all()}


@pytest.mark.parametrize(
    "where, example, event_type, status",
    [
        ("the admin's placeholder", lambda: _placeholder(WebhookForm()), "job.finished", "COMPLETED"),
        ("the namespace form's placeholder", lambda: _placeholder(NamespaceWebhookForm(
            namespace=Namespace(name="x", path="x"))), "build.finished", "FAILED"),
        ("docs/integrating.md", lambda: _doc_filters("integrating.md")[0], "job.callback", "FAILED"),
        ("docs/api.md", lambda: _doc_filters("api.md")[0], "build.finished", "FAILED"),
    ],
)  # fmt: skip
def test_a_copied_filter_example_lets_its_event_through(where, example, event_type, status):
    spec = filters.validate(example())
    payloads = _finished_payloads(status)
    assert filters.matches(spec, payloads[event_type]), (where, spec, payloads[event_type])


def test_a_saved_filter_and_its_preview_read_as_json_on_the_webhook_page(client):
    import html

    from hooks.models import Webhook

    owner = get_user_model().objects.create_user("olga", "olga@example.com", "pw")
    Namespace.objects.create(owner=owner, name="acme", path="acme")
    spec = {"all": [{"path": "status", "in": ["FAILED", "TIMED_OUT"]}, {"path": "x", "eq": None}]}
    hook = Webhook.objects.create(scope="namespace", namespace=str(Namespace.objects.get().pk),
                                  name="ci", url="https://ci.example.com/h", event_types=["*"],
                                  payload_filter=spec)  # fmt: skip
    client.force_login(owner)
    page = client.get(f"/namespaces/acme/webhooks/{hook.pk}/").content.decode()
    shown = page.split('<pre id="payload-filter">', 1)[1].split("</pre>", 1)[0]
    assert json.loads(html.unescape(shown)) == spec
    assert "None" not in shown and "'" not in html.unescape(shown)
