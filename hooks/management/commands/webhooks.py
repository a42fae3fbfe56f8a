"""`manage.py webhooks`: list, status, pace, test, replay (alias redeliver), retry (what a
search finds), prune, receive, forward, reencrypt."""

from __future__ import annotations

import argparse
import hmac
import io
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from hooks import catalog, webhook_secrets
from hooks.management.cli import OneLineErrors, Progress, one_line_errors, quiet_logs
from hooks.models import Delivery, Webhook
from hooks.outgoing import signing
from hooks.tools import (
    configure,
    forward,
    redelivery,
    reencryption,
    retention,
    search,
    shown,
    stats,
)
from hooks.tools.ping import send_test
from hooks.tools.receiver import Receiver, Reply

STATUSES = ["failed", "skipped", "succeeded", "pending"]
ALIASES = {"redeliver": "replay"}


def moment(value: str) -> datetime:
    """ISO date or date-time; naive values are in the current time zone."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)"
            )
        parsed = datetime(day.year, day.month, day.day)
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


def find_webhook(value: str) -> Webhook:
    hooks = (
        Webhook.objects.filter(pk=int(value))
        if value.isdigit()
        else Webhook.objects.filter(name=value)
    )
    found = list(hooks[:2])
    if not found:
        raise CommandError(f"No webhook with id or name {value!r}.")
    if len(found) > 1:
        raise CommandError(f"Several webhooks are named {value!r}; use the id.")
    return found[0]


class Command(BaseCommand):
    force_progress = False  # tests: draw the bar although stderr is not a terminal

    help = "Operate webhooks: list, status, pace, test, replay, retry, prune, receive, forward, reencrypt."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=OneLineErrors)
        sub.add_parser("list", help="Every webhook with its scope, state and URL.")
        status = sub.add_parser(
            "status", help="Per webhook: state, success rate, last failure, backlog."
        )
        status.add_argument(
            "--days", type=float, default=7, help="Period of the success rate (default 7)."
        )
        pace = sub.add_parser(
            "pace", help="Show a webhook's pace, or set its rate, burst and most in flight."
        )
        pace.add_argument("webhook", help="Id or name.")
        pace.add_argument("--rate", help="Most requests per second; 'none' removes it.")
        pace.add_argument("--burst", help="Requests at once after a quiet spell; 'none': default.")
        pace.add_argument("--max-in-flight", help="Most requests in flight; 'none' removes it.")
        test = sub.add_parser("test", help="Send a test event now and show the answer.")
        test.add_argument("webhook", help="Id or name.")
        again = sub.add_parser(  # `replay`, as the pages and the API call it
            "replay", aliases=["redeliver"],
            help="Queue finished deliveries again (same webhook-id).",
        )  # fmt: skip
        again.add_argument("--webhook", help="Id or name.")
        again.add_argument(
            "--status", nargs="+", action="extend", choices=STATUSES,
            help="One or more statuses (default: failed).",
        )  # fmt: skip
        again.add_argument("--since", type=moment, help="Created at or after (YYYY-MM-DD[THH:MM]).")
        again.add_argument("--until", type=moment, help="Created before.")
        again.add_argument("--event-type", help="Only deliveries of this event type.")
        again.add_argument("--dry-run", action="store_true", help="Only count.")
        retry = sub.add_parser(
            "retry", help="Send every delivery a search finds again (same webhook-ids): the "
            "count first, then a question (--yes: no question).",
        )  # fmt: skip
        retry.add_argument("--webhook", help="Id or name.")
        retry.add_argument("--status", nargs="+", action="extend", choices=STATUSES,
                           help="One or more statuses (default: any).")  # fmt: skip
        retry.add_argument("--event-type", help="Only deliveries of this event type.")
        retry.add_argument("--since", help="Created at or after (YYYY-MM-DD[ HH:MM], UTC).")
        retry.add_argument("--until", help="Created before.")
        retry.add_argument("--response-status", help="The last answer: 500, 5xx, or none.")
        retry.add_argument("--subject", help="What the events are about: job:<id>, namespace:"
                           "<name>, user:<id>.")  # fmt: skip
        retry.add_argument("--id", dest="q", help="A webhook-id or an event id.")
        retry.add_argument("--yes", action="store_true", help="Send without asking.")
        prune = sub.add_parser("prune", help="Delete history older than N days.")
        prune.add_argument(
            "--days",
            type=int,
            required=True,
            help="Delete events (with their deliveries and attempts) older than this many days.",
        )
        prune.add_argument(
            "--body-days", type=int,
            help="Also empty the bodies (payloads, request and response bodies) of what is "
            "older than this many days, keeping the rest; at most --days.",
        )  # fmt: skip
        sub.add_parser(
            "reencrypt",
            help="Encrypt every stored secret again with the first ENCRYPTION_KEYS key.",
        )
        receive = sub.add_parser("receive", help="A local receiver that prints requests.")
        receive.add_argument("--port", type=int, required=True, help="Port to listen on.")
        receive.add_argument("--host", default="127.0.0.1", help="Address (default 127.0.0.1).")
        receive.add_argument("--secret", help="whsec_… secret to verify signatures with.")
        receive.add_argument("--status-code", type=int, default=200, help="What to answer.")
        fwd = sub.add_parser(
            "forward", help="Follow a webhook's feed and post each delivery to a local URL."
        )
        fwd.add_argument("webhook", help="Id or name.")
        fwd.add_argument("--to", required=True, help="Where to post (http://localhost:3000/hook).")
        start = fwd.add_mutually_exclusive_group()
        start.add_argument(
            "--from-start",
            action="store_true",
            help="From the oldest delivery kept (default: now).",
        )
        start.add_argument("--after", help="From after this cursor (printed when it stops).")
        fwd.add_argument(
            "--hub", help="A hub elsewhere (https://hub.example.com), read with --token."
        )
        fwd.add_argument(
            "--token",
            help="An API token of someone who manages the webhook on --hub "
            "(default: $WEBHOOKHUB_TOKEN).",
        )  # fmt: skip
        fwd.add_argument(
            "--poll", type=float, default=forward.POLL,
            help=f"Seconds between reads when nothing is new (default {forward.POLL:g}).",
        )  # fmt: skip

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def handle(self, *args, action: str, **options) -> None:
        action = ALIASES.get(action, action)
        try:
            with quiet_logs(options["verbosity"], "hooks"):
                getattr(self, f"do_{action}")(**options)
        except BrokenPipeError:  # `webhooks status | head`: the reader has all it wanted
            _quiet_stdout()

    def do_list(self, **options) -> None:
        for webhook in Webhook.objects.order_by("pk"):
            state = (
                "disabled" if webhook.is_disabled else ("active" if webhook.active else "inactive")
            )
            events = ",".join(webhook.event_types) or "-"
            order = "ordered" if webhook.ordered else "-"  # order per subject
            self.stdout.write(
                f"{webhook.pk:>4}  {webhook.name:<24} {webhook.scope:<9} {state:<8} {order:<7} "
                f"{webhook.url}  [{events}]"
            )

    def do_status(self, days: float, **options) -> None:
        since = timezone.now() - timedelta(days=days)
        for webhook in Webhook.objects.order_by("pk"):
            s = stats.webhook_status(webhook, since)
            rate = "-" if s.rate is None else f"{s.rate:.1%}"
            held = f" (+{s.held} held for order)" if s.held else ""
            last = "never"
            if s.last_failure:
                a = s.last_failure
                what = f"HTTP {a.response_status}" if a.response_status else a.error
                last = f"{a.started_at:%Y-%m-%d %H:%M} {what}"
            self.stdout.write(
                f"{webhook.pk:>4}  {webhook.name:<24} {s.state:<8} success {rate:>6} "
                f"({s.succeeded} ok, {s.failed} failed)  backlog {s.backlog}{held}  "
                f"last failure: {last}"
            )
            if webhook.is_disabled:
                self.stdout.write(f"      disabled: {webhook.disabled_reason}")

    def do_pace(self, webhook: str, rate, burst, max_in_flight, **options) -> None:
        """Through hooks.configure, as every page and the API: a wrong value changes
        nothing and says why."""
        found = find_webhook(webhook)
        given = {"rate_limit": rate, "rate_burst": burst, "max_in_flight": max_in_flight}
        changes = {
            name: None if value.strip().lower() in ("none", "") else value.strip()
            for name, value in given.items()
            if value is not None
        }
        if changes:
            try:
                configure.configure_webhook(found, changes)
            except ValidationError as exc:
                name, messages = next(iter(exc.message_dict.items()))
                raise CommandError(f"{name}: {messages[0]}") from None
        self.stdout.write(f"{found.pk}  {found.name}: {shown.pace_state(found) or 'not paced'}")

    def do_test(self, webhook: str, **options) -> None:
        result = send_test(find_webhook(webhook))
        self.stdout.write(result.summary())
        if result.body_preview:
            self.stdout.write(result.body_preview)
        if result.reenabled:
            self.stdout.write("The webhook was disabled and is enabled again.")
        if not result.ok:
            raise CommandError("The test event was not accepted.")

    def do_replay(self, webhook, status, since, until, event_type, dry_run, **options) -> None:
        if event_type:  # an unknown type is an error, not an empty selection
            try:
                catalog.get(event_type)
            except catalog.UnknownEventType as exc:
                raise CommandError(str(exc)) from None
        selection = redelivery.select(
            webhook=find_webhook(webhook) if webhook else None,
            statuses=status or ["failed"],
            since=since,
            until=until,
            event_type=event_type,
        )
        count = selection.count()
        expired = redelivery.expired_among(selection)
        if expired:
            self.stderr.write(
                f"{expired} of them cannot be sent again: their bodies expired "
                "(WEBHOOK_BODY_RETENTION_DAYS)."
            )
        if dry_run:
            self.stdout.write(f"{count} deliveries would be redelivered.")
            return
        started = time.monotonic()
        progress = Progress("Queueing", self.stderr._out, force=self.force_progress)
        try:
            queued = redelivery.redeliver_in_batches(selection, progress=progress)
        finally:
            progress.close()
        self.stdout.write(f"{queued} deliver{'y' if queued == 1 else 'ies'} queued for redelivery "
                          f"(of {count} selected) in {time.monotonic() - started:.1f} s.")  # fmt: skip

    def do_retry(self, webhook, yes: bool, **options) -> None:
        data = QueryDict(mutable=True)
        for name in ("event_type", "since", "until", "response_status", "subject", "q"):
            if options.get(name):
                data[name] = options[name]
        data.setlist("status", options.get("status") or [])
        if webhook:
            data["webhook"] = str(find_webhook(webhook).pk)
        form = search.SearchForm(data, webhooks=Webhook.objects.all())
        if not form.is_valid():
            raise CommandError(form.first_error()[0].replace("q: ", "id: ", 1))
        matching = form.search(Delivery.objects.all())
        try:
            count = search.count_for_retry(matching)
        except search.TooMany as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{count} deliver{'y' if count == 1 else 'ies'} match "
                          f"(search: {form.described()}).")  # fmt: skip
        if not count:
            return
        if not yes and not self._confirmed(f"Send {count} again, the same webhook-ids? [y/N] "):
            self.stdout.write("Nothing was sent.")
            return
        started = time.monotonic()
        progress = Progress("Queueing", self.stderr._out, force=self.force_progress)
        try:
            queued = search.retry_matching(matching, count, progress=progress)
        finally:
            progress.close()
        self.stdout.write(f"{queued} deliver{'y' if queued == 1 else 'ies'} queued to be sent "
                          f"again (of {count}) in {time.monotonic() - started:.1f} s.")  # fmt: skip

    def _confirmed(self, question: str) -> bool:
        """The answer to a yes/no question on stdin; no answer (not a terminal, end of
        input) is no."""
        self.stdout.write(question, ending="")
        self.stdout.flush()
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def do_prune(self, days: int, body_days: int | None, **options) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1.")
        if body_days is not None and not 1 <= body_days <= days:
            raise CommandError(f"--body-days must be between 1 and --days ({days}).")
        started = time.monotonic()
        now = timezone.now()
        progress = Progress("Pruning", self.stderr._out, force=self.force_progress)
        try:
            gone = retention.prune(now - timedelta(days=days), progress=progress)
        finally:
            progress.close()
        self.stdout.write(
            f"Pruned {gone['events']} events older than {days} days, with {gone['deliveries']} "
            f"deliveries and {gone['attempts']} attempts, in {time.monotonic() - started:.1f} s."
        )
        if body_days is None:
            return
        started = time.monotonic()
        progress = Progress("Emptying bodies", self.stderr._out, force=self.force_progress)
        try:
            emptied = retention.expire_bodies(now - timedelta(days=body_days), progress=progress)
        finally:
            progress.close()
        self.stdout.write(
            f"Emptied the bodies of {emptied['events']} events older than {body_days} days "
            f"({emptied['attempts']} attempts, {emptied['large_values']} large values), in "
            f"{time.monotonic() - started:.1f} s."
        )

    def do_reencrypt(self, **options) -> None:
        count = reencryption.reencrypt()
        self.stdout.write(
            f"Secrets of {count} webhooks encrypted with the first key; older keys may go."
        )

    def do_forward(
        self, webhook: str, to: str, from_start: bool, after: str | None, hub: str | None,
        token: str | None, poll: float, **options,
    ) -> None:  # fmt: skip
        if token and not hub:
            raise CommandError("--token is for a hub elsewhere (--hub).")
        if poll <= 0:
            raise CommandError("--poll must be more than 0 seconds.")
        try:
            target = forward.check_target(to)
        except ValueError as exc:
            raise CommandError(f"--to: {exc}") from None
        feed = _feed(webhook, hub, token)

        def say(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()  # each line as it happens, also into a pipe

        forwarder = forward.Forwarder(feed, target, say, poll=poll)
        cursor = None if from_start else (after or forward.NOW)
        with _stopped_by_signals(forwarder.stop):
            try:
                cursor = forwarder.begin(cursor)
                start = (
                    "the oldest delivery kept" if from_start else ("the cursor" if after else "now")
                )
                say(f"Forwarding {feed.name} to {target} from {start} (Ctrl-C stops).")
                cursor = forwarder.run(cursor)
            except (forward.FeedRefused, forward.FeedUnreachable) as exc:
                raise CommandError(f"{exc} (resume with {forward.resume_hint(cursor)})") from None
        say(f"Stopped. Resume with {forward.resume_hint(cursor)}")

    def do_receive(
        self, port: int, host: str, secret: str | None, status_code: int, **options
    ) -> None:
        if secret:
            try:
                webhook_secrets.secret_key(secret)
            except ValueError as exc:
                raise CommandError(f"--secret: {exc}") from None

        def show(request) -> Reply:
            self.stdout.write(f"\n{request.method} {request.path}")
            for name, value in request.headers.items():
                self.stdout.write(f"{name}: {value}")
            self.stdout.write("")
            self.stdout.write(request.body.decode("utf-8", errors="replace"))
            self.stdout.write(f"-- signature: {verdict(request, secret)}")
            return Reply(status_code, body=b"received")

        receiver = Receiver(host=host, port=port, respond=show)
        # Ctrl-C stops it, and so does SIGTERM (a supervisor, a script that started it in
        # the background, where SIGINT is ignored).
        signal.signal(signal.SIGTERM, lambda *_: receiver.released.set())
        self.stdout.write(f"Listening on {receiver.url.rsplit('/', 1)[0]}/ (Ctrl-C stops)")
        receiver.start()
        try:
            receiver.released.wait()
        except KeyboardInterrupt:
            pass
        finally:
            receiver.stop()


def _feed(webhook: str, hub: str | None, token: str | None) -> forward.Feed:
    if not hub:
        return forward.LocalFeed(find_webhook(webhook))
    if not hub.startswith(("http://", "https://")):
        raise CommandError(f"--hub: {hub!r} is not an http:// or https:// URL.")
    token = token or os.environ.get("WEBHOOKHUB_TOKEN")  # kept out of shell history and `ps`
    if not token:
        raise CommandError("--hub needs an API token: --token, or $WEBHOOKHUB_TOKEN.")
    return forward.RemoteFeed(hub, token, webhook)


@contextmanager
def _stopped_by_signals(stop: threading.Event):
    """Ctrl-C (SIGINT) and SIGTERM set `stop`, so the forwarder ends cleanly (in the
    main thread only: signals go nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _quiet_stdout() -> None:
    """What is left to write goes nowhere, so Python's exit does not report the closed
    pipe once more (its flush of stdout would)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # no real stdout (a test's capture): nothing to flush


def verdict(request, secret: str | None) -> str:
    """Whether a received request's Standard Webhooks signature verifies."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    if "webhook-signature" not in headers:
        return "not signed"
    if not secret:
        return "signed (give --secret to verify)"
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not timestamp.isdigit():
        return "INVALID (no timestamp)"
    expected = signing.sign(secret, msg_id, int(timestamp), request.body)
    valid = any(
        hmac.compare_digest(expected, given) for given in headers["webhook-signature"].split(" ")
    )
    age = abs(timezone.now().timestamp() - int(timestamp))
    if not valid:
        return "INVALID"
    return "valid" if age <= 300 else f"valid, but the timestamp is {age:.0f}s old"
