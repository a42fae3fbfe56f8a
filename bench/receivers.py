"""The benchmark's receivers, in a process of their own so they do not share a GIL with
what is measured. Prints one JSON line with the ports, then serves until stdin closes.

- fast: answers 200 at once
- slow: answers 200 after 50 ms
- dead: never answers (holds the connection for up to 60 s)
- control: GET /stats → counts (and distinct webhook-ids) per receiver and arrival
  times by `seq`; POST /reset
"""

from __future__ import annotations

import json
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


def slow(request: Received) -> Reply:
    time.sleep(0.05)
    return Reply(200, body=b"ok")


def main() -> None:
    servers = {"fast": Receiver(respond=fast), "slow": Receiver(respond=slow)}
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
            return Reply(200, body=b"{}")
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
