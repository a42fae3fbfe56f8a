"""What the log says of a URL: where a delivery went, never the token a receiver keeps
in its query or userinfo (a job's callback URL's `?token=`). The attempt history keeps
the whole URL for its owner."""

from __future__ import annotations

import logging
import socket

import pytest

from hooks import logsafe
from hooks.models import Delivery
from hooks.tools.receiver import Reply
from hooks.worker.pump import Pump
from jobs import runner
from tests.test_jobs_api import submit
from tests.test_sweeper import broker_task_ids

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    """A loopback port nothing listens on (a callback there gets no answer: a stall)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_callbacks_token_never_reaches_the_log(api, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="hooks")  # as VERBOSE or LOG_LEVEL=DEBUG set it
    gone = f"http://127.0.0.1:{closed_port()}/gone?token=MOVED-TOKEN"
    receiver.respond = lambda request: Reply(307, headers={"Location": gone}, body=b"")
    stalled = f"http://127.0.0.1:{closed_port()}/cb?token=STALL-TOKEN"
    moved = receiver.url + "/cb?token=FIRST-TOKEN"
    broker_task_ids()
    for url in (stalled, moved):
        assert runner.run(submit(api, webhook=url)) == "COMPLETED"
    for ids in broker_task_ids():
        Pump().drain(ids)
    [first] = receiver.requests  # its answer moved the callback on, to a closed port
    assert first.path.endswith("/cb?token=FIRST-TOKEN")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"Endpoint {logsafe.url(stalled)} stalls" in logged
    assert logsafe.url(stalled).endswith("/cb?…")
    assert f"redirects (HTTP 307) to {logsafe.url(gone)}; this webhook" in logged
    assert "TOKEN" not in logged
    # The owner's history keeps the whole URL (their Jobs page shows each attempt).
    assert set(Delivery.objects.values_list("target_url", flat=True)) == {stalled, moved}


@pytest.mark.parametrize(("url", "logged"), [
    ("https://ann:pw@hooks.example.com:8443/a/b?token=x#frag", "https://hooks.example.com:8443/a/b?…#…"),
    ("http://[::1]:9/cb", "http://[::1]:9/cb"),
    ("http://example.com", "http://example.com"),
    ("http://example.com:99999/x", "(an unreadable URL)"),
])  # fmt: skip
def test_a_logged_url_keeps_where_it_went_only(url, logged):
    assert logsafe.url(url) == logged
    assert logsafe.text(f"Redirect 1 to '{url}': refused") == f"Redirect 1 to '{logged}': refused"
    assert logsafe.text(f"It moved to {url}; follow it.") == f"It moved to {logged}; follow it."
