"""The benchmark's receivers, in a process of their own so they do not share a GIL with
what is measured. Prints one JSON line with the ports, then serves until stdin closes.

- fast: answers 200 at once
- slow: answers 200 after 50 ms
- dead: never answers (holds the connection for up to 60 s)
- flaky: answers 503 to 5 % of requests at random, 200 to the rest, and checks each
  subject's order (X-Webhookhub-Subject / -Sequence) among the requests it accepted
- control: GET /stats → counts (and distinct webhook-ids) per receiver and arrival
  times by `seq`; GET /order → the flaky receiver's counts alone; POST /reset
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time

from hooks.tools.receiver import Received, Receiver, Reply

arrivals: dict[int, float] = {}
lock = threading.Lock()


def note(request: Received) -> None:
    if b'"seq"' in request.body:
        try:
            seq = json.loads(request.body)["seq"]
        except (ValueError, KeyError, TypeError):
            return
        with lock:
            arrivals[seq] = time.time()


def fast(request: Received) -> Reply:
    note(request)
    return Reply(200, body=b"ok")


class Flaky:
    """Fails 5 % at random. An accepted request whose sequence number is below one its
    subject already had accepted arrived out of order (the same number again is a
    redelivery, not disorder)."""

    FAILS = 0.05

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.rng = random.Random(39)
        self.last: dict[str, int] = {}
        self.counts = {"ok": 0, "failed": 0, "out_of_order": 0}

    def __call__(self, request: Received) -> Reply:
        subject = request.headers.get("X-Webhookhub-Subject")
        sequence = int(request.headers.get("X-Webhookhub-Sequence") or 0)
        with self.lock:
            if self.rng.random() < self.FAILS:
                self.counts["failed"] += 1
                return Reply(503, body=b"try again")
            self.counts["ok"] += 1
            if subject is not None:
                if sequence < self.last.get(subject, 0):
                    self.counts["out_of_order"] += 1
                self.last[subject] = max(sequence, self.last.get(subject, 0))
        return Reply(200, body=b"ok")

    def stats(self) -> dict:
        with self.lock:
            return {**self.counts, "subjects": len(self.last)}


flaky = Flaky()


def slow(request: Received) -> Reply:
    time.sleep(0.05)
    return Reply(200, body=b"ok")


def main() -> None:
    servers = {
        "fast": Receiver(respond=fast),
        "slow": Receiver(respond=slow),
        "flaky": Receiver(respond=flaky),
    }
    dead = Receiver()

    def hang(request: Received) -> None:
        dead.released.wait(60)
        return None  # then drop the connection without an answer

    dead.respond = hang
    servers["dead"] = dead

    def control(request: Received) -> Reply:
        if request.path.startswith("/reset"):
            for server in servers.values():
                server.requests.clear()
            with lock:
                arrivals.clear()
            with flaky.lock:
                flaky.reset()
            return Reply(200, body=b"{}")
        if request.path.startswith("/order"):  # cheap enough to ask often during a drain
            return Reply(
                200, {"Content-Type": "application/json"}, json.dumps(flaky.stats()).encode()
            )
        with lock:
            stats = {
                "counts": {name: len(s.requests) for name, s in servers.items()},
                # requests under a webhook-id already seen: a delivery sent twice
                "distinct": {
                    name: len({r.headers.get("webhook-id") for r in s.requests})
                    for name, s in servers.items()
                },
                "arrivals": dict(arrivals),
            }
        return Reply(200, {"Content-Type": "application/json"}, json.dumps(stats).encode())

    servers["control"] = Receiver(respond=control)
    for server in servers.values():
        server.start()
    print(json.dumps({name: s.port for name, s in servers.items()}), flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    dead.released.set()


if __name__ == "__main__":
    main()
