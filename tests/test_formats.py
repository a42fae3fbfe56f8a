"""Chat platform bodies and JSON data templates."""

from __future__ import annotations

import json

import pytest

from hooks import catalog, emit
from hooks.models import BodyFormat
from hooks.outgoing import formats, templating
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://discord.com/api/webhooks/1/abc", BodyFormat.DISCORD),
        ("https://discordapp.com/api/webhooks/1/abc", BodyFormat.DISCORD),
        ("https://discord.com/channels/1", BodyFormat.JSON),
        ("https://hooks.slack.com/services/T/B/X", BodyFormat.SLACK),
        ("https://chat.googleapis.com/v1/spaces/A/messages?key=k", BodyFormat.GOOGLE_CHAT),
        ("https://acme.webhook.office.com/webhookb2/x", BodyFormat.TEAMS),
        ("https://prod-1.westus.logic.azure.com/workflows/x", BodyFormat.TEAMS_WORKFLOW),
        ("https://x.environment.api.powerplatform.com/powerautomate/y", BodyFormat.TEAMS_WORKFLOW),
        ("https://example.com/hook", BodyFormat.JSON),
        ("https://evil-discord.com/api/webhooks/1", BodyFormat.JSON),
    ],
)
def test_auto_detects_the_platform_from_the_url(url, expected):
    assert formats.detect(url) == expected


@pytest.fixture
def summarised_event():
    catalog.register_event_type(
        "test.summarised", "A summarised event.", example={"who": "Ann"}, summary="{who} did {what}"
    )
    yield "test.summarised"
    catalog.unregister_event_type("test.summarised")


@pytest.mark.parametrize(
    "fmt, key",
    [("discord", "content"), ("slack", "text"), ("google_chat", "text"), ("teams", "title")],
)
def test_chat_formats_send_the_one_line_message(receiver, summarised_event, fmt, key):
    make_webhook(receiver.url, format=fmt, event_types=[summarised_event])
    emit(summarised_event, {"who": "Ann", "what": "a thing"})
    deliver_due()
    body = json.loads(receiver.requests[0].body)
    assert body[key] == "Ann did a thing"
    if fmt == "teams":
        assert body["@type"] == "MessageCard"


def test_discord_content_is_cut_to_2000_characters(receiver, summarised_event):
    make_webhook(receiver.url, format="discord", event_types=[summarised_event])
    emit(summarised_event, {"who": "x" * 5000, "what": "y"})
    deliver_due()
    content = json.loads(receiver.requests[0].body)["content"]
    assert len(content) == 2000 and content.endswith("…")


def test_json_format_sends_the_payload_even_to_a_chat_url(receiver):
    make_webhook(receiver.url, format="json")
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    assert json.loads(receiver.requests[0].body) == {"n": 1}


def test_missing_summary_fields_stay_visible():
    assert formats.message("webhook.disabled", {"reason": "gone"}).startswith("Webhook {webhook")


@pytest.mark.parametrize(
    "template, values, expected",
    [
        ('{"a": "%x%"}', {"x": 'q"uo\\te\nnl'}, '{"a": "q\\"uo\\\\te\\nnl"}'),
        ('{"a": "%unknown%"}', {}, '{"a": "%unknown%"}'),
        ('{"a": "%n%"}', {"n": 5}, '{"a": "5"}'),
        ('{"a": "%d%"}', {"d": {"k": [1]}}, '{"a": "{\\"k\\": [1]}"}'),
        ('{"a": "%a"b%"}', {'a"b': "x"}, '{"a": "%a"b%"}'),  # quotes: not a tag
        ('{"a": "%' + "t" * 257 + '%"}', {"t" * 257: "x"}, '{"a": "%' + "t" * 257 + '%"}'),
    ],
)
def test_template_tags_follow_swarmui_rules(template, values, expected):
    assert templating.render(template, values) == expected


def test_rendered_templates_stay_valid_json():
    rendered = templating.render('{"a": "%x%"}', {"x": '"}, "injected": {"'})
    assert json.loads(rendered) == {"a": '"}, "injected": {"'}


@pytest.fixture
def job_event():
    catalog.register_event_type(
        "test.job_done", "A job ended.", example={}, summary="{job[name]} finished: {job[status]}"
    )
    yield "test.job_done"
    catalog.unregister_event_type("test.job_done")


def job_payload(status: str) -> dict:
    return {"event": "job_finished",
            "job": {"id": "j1", "name": "render", "status": status, "url": "https://hub/jobs/j1"}}  # fmt: skip


@pytest.mark.parametrize(
    "status, colour",
    [("COMPLETED", "2EB886"), ("FAILED", "D63333"), ("CANCELLED", "8A8886"),
     ("passed", "2EB886"), ("timed_out", "D63333"), ("killed", "8A8886")],  # Djinn's builds
)  # fmt: skip
def test_teams_gets_a_message_card_with_facts_coloured_by_outcome(
    receiver, job_event, status, colour
):
    make_webhook(receiver.url, format="teams", event_types=[job_event])
    emit(job_event, job_payload(status))
    deliver_due()
    card = json.loads(receiver.requests[0].body)
    assert card["@type"] == "MessageCard" and card["themeColor"] == colour
    assert card["title"] == f"render finished: {status}"
    section = card["sections"][0]
    assert {"name": "job.status", "value": status} in section["facts"]
    assert {"name": "job.url", "value": "https://hub/jobs/j1"} in section["facts"]


def test_teams_workflows_get_an_adaptive_card(receiver, job_event):
    make_webhook(receiver.url, format="teams_workflow", event_types=[job_event])
    emit(job_event, job_payload("FAILED"))
    deliver_due()
    message = json.loads(receiver.requests[0].body)
    assert message["type"] == "message"
    attachment = message["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, _, fact_set = card["body"]
    assert title["text"] == "render finished: FAILED" and title["color"] == "Attention"
    assert {"title": "job.name", "value": "render"} in fact_set["facts"]


def test_open_webui_code_shape_of_a_finished_job(receiver):
    """Open WebUI's chat notification: the message is the result, the title and url
    beside it (a type's `chat` says so, not the payload's look: test.job_done above has
    the same payload and gets its summary)."""
    make_webhook(receiver.url, format="open_webui", event_types=["job.finished"])
    emit("job.finished", {**job_payload("COMPLETED"), "job": {
        **job_payload("COMPLETED")["job"], "output": "A red fox."}})  # fmt: skip
    deliver_due()
    assert json.loads(receiver.requests[0].body) == {
        "action": "chat", "message": "A red fox.", "title": "render", "url": "https://hub/jobs/j1",
    }  # fmt: skip


def test_an_event_type_without_chat_parts_keeps_its_summary_in_open_webuis_shape(
    receiver, job_event
):
    make_webhook(receiver.url, format="open_webui", event_types=[job_event])
    emit(job_event, job_payload("COMPLETED"))
    deliver_due()
    assert json.loads(receiver.requests[0].body) == {
        "action": "test.job_done",
        "message": "render finished: COMPLETED",
    }


def test_open_webui_code_shape_of_a_signup(receiver):
    from django.contrib.auth import get_user_model

    make_webhook(receiver.url, format="open_webui", event_types=["user.signup"])
    get_user_model().objects.create_user("tim@example.com", "tim@example.com", "pw", name="Tim")
    deliver_due()
    body = json.loads(receiver.requests[0].body)
    assert body["action"] == "signup" and body["message"] == "New user signed up: Tim"
    assert json.loads(body["user"])["email"] == "tim@example.com"  # a JSON string, as Open WebUI's


def test_a_discord_image_template_is_json_after_its_prefix():
    templating.validate('[discord_image] {"content": "%prompt%"}')
    with pytest.raises(ValueError, match="not valid JSON"):
        templating.validate('[discord_image] {"content": ')
    assert templating.split_discord_image(' [discord_image]{"a": 1}') == (True, '{"a": 1}')
    assert templating.split_discord_image('{"a": 1}') == (False, '{"a": 1}')
