"""After a request to the hub completes with a 2xx status, one `route.called` event per
route event it matches, written once the request's transaction commits; the route
webhooks that listen to that route event get it from the worker. Recording them never
turns the call's answer into an error: the call's work is done (and committed), so a
500 would only make its client send it again."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException

from routes import capture, events
from routes.matching import matcher

log = logging.getLogger("routes.middleware")


class RouteEventsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not 200 <= response.status_code < 300:
            return response
        routes = matcher.match(request.method, request.path)
        if routes:
            try:
                self._record(request, response, routes)
            except Exception as exc:  # the call succeeded (and committed): keep its answer
                # one line, the error's type only: its message may quote the body
                log.error("Route events of %s %s not recorded: %s", request.method,
                          request.path, type(exc).__name__)  # fmt: skip
        return response

    @staticmethod
    def _record(request: HttpRequest, response: HttpResponse, routes) -> None:
        try:
            raw = request.body
        except RawPostDataException:  # a multipart upload the view read: its fields
            raw = b""
        call = {
            "request": capture.request_part(request, raw),
            "response": capture.response_part(response),
        }
        ids = [(route.id, route.label) for route in routes]
        transaction.on_commit(lambda: events.fire(ids, call), robust=True)
