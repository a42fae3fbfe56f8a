"""Signatures as receivers check them: the standardwebhooks library, and GitHub style."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

import hooks
from hooks import emit, webhook_secrets
from hooks.worker.attempt import deliver_due
from tests.conftest import TEST_EVENT, make_webhook, verify

pytestmark = pytest.mark.django_db


def test_signature_verifies_with_standardwebhooks(receiver):
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"text": "héllo ✓", "n": [1, 2]})
    deliver_due()
    request = receiver.requests[0]
    assert verify(webhook, request) == {"text": "héllo ✓", "n": [1, 2]}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("webhookhub/")
    assert request.headers["X-Webhookhub-Event"] == TEST_EVENT


def test_a_tampered_body_does_not_verify(receiver):
    webhook = make_webhook(receiver.url)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    request = receiver.requests[0]
    with pytest.raises(WebhookVerificationError):
        Verifier(webhook.secret).verify(b'{"n":2}', request.headers)


def test_rotation_signs_with_both_secrets_for_a_day(receiver):
    old = webhook_secrets.generate_secret()
    webhook = make_webhook(
        receiver.url,
        secret=webhook_secrets.generate_secret(),
        previous_secret=old,
        previous_secret_expires_at=timezone.now() + timedelta(hours=24),
    )
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(webhook, request)
    Verifier(old).verify(request.body, request.headers)


def test_rotate_secret_keeps_the_old_one_for_24_hours(receiver):
    webhook = make_webhook(receiver.url)
    old = webhook.secret
    new = hooks.rotate_secret(webhook).new_secret
    assert new != old and webhook.signing_secrets() == [new, old]
    assert webhook.signing_secrets(timezone.now() + timedelta(hours=24, seconds=1)) == [new]


def test_an_expired_previous_secret_no_longer_signs(receiver):
    old = webhook_secrets.generate_secret()
    make_webhook(
        receiver.url,
        previous_secret=old,
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1),
    )
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Verifier(old).verify(request.body, request.headers)


def test_github_style_signature(receiver):
    webhook = make_webhook(receiver.url, github_signature=True)
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    request = receiver.requests[0]
    expected = hmac.new(webhook.secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hub-Signature-256"] == f"sha256={expected}"


def test_generated_secrets_follow_the_standard():
    secret = webhook_secrets.generate_secret()
    assert secret.startswith("whsec_") and len(webhook_secrets.secret_key(secret)) == 32
    assert webhook_secrets.generate_secret() != secret


@pytest.mark.parametrize(
    "bad",
    ["plain", "fifteen-chars!!", "x" * 257, "tab\tin-the-secret-here", " leading-space-secret",
     "whsec_not base64!", "whsec_c2hvcnQ="],
)  # fmt: skip
def test_malformed_secrets_are_refused(bad):
    with pytest.raises(ValueError):
        webhook_secrets.secret_key(bad)


def test_custom_headers_and_basic_auth_are_sent_but_stored_masked(receiver):
    webhook = make_webhook(
        receiver.url,
        headers={"X-Api-Key": "s3cret-key"},
        basic_auth_username="hub",
        basic_auth_password="pa55word",
    )
    emit(TEST_EVENT, {"n": 1})
    deliver_due()
    request = receiver.requests[0]
    assert request.headers["X-Api-Key"] == "s3cret-key"
    assert request.headers["Authorization"] == "Basic aHViOnBhNTV3b3Jk"
    stored = webhook.deliveries.get().attempt_set.get().request_headers
    assert stored["X-Api-Key"] == "********" and stored["Authorization"] == "********"
    assert "s3cret" not in str(stored) and "pa55word" not in str(stored)


def test_data_template_replaces_the_payload(receiver):
    make_webhook(
        receiver.url, data_template='{"content": "n is %n%, %unknown% stays", "t": "%event_type%"}'
    )
    emit(TEST_EVENT, {"n": 'say "hi"'})
    deliver_due()
    import json

    body = json.loads(receiver.requests[0].body)
    assert body == {"content": 'n is say "hi", %unknown% stays', "t": TEST_EVENT}
