"""The /api/v1 NinjaAPI: its routers, token auth, JSON errors, and one OpenAPI document
for /api/v1 and the /v2 job API (the job API is its own NinjaAPI, mounted at /v2/)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from api import errors, ingest, webhooks
from api.auth import TokenAuth
from hooks import VERSION
from jobs.openapi import jobs_api  # the job API's own document, merged into ours


class HubAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        other = jobs_api.get_openapi_schema(path_prefix="/v2")
        schema["paths"].update(other["paths"])
        for part, entries in other.get("components", {}).items():
            schema.setdefault("components", {}).setdefault(part, {}).update(entries)
        return schema


hub = HubAPI(
    title="webhookhub API",
    version=VERSION,
    description="Events for outside producers (/api/v1) and the RunPod-compatible job API "
    "(/v2). Authenticate with an API token: `Authorization: Bearer <token>`.",
    auth=TokenAuth(),
    urls_namespace="api",
)
hub.add_router("/", ingest.router)
hub.add_router("/", webhooks.router)


@hub.exception_handler(errors.ApiError)
def _api_error(request: HttpRequest, exc: errors.ApiError) -> JsonResponse:
    return errors.handle_api_error(request, exc)


@hub.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> JsonResponse:
    return errors.response("Unauthorized: send Authorization: Bearer <API token>.", 401)


@hub.exception_handler(NinjaValidationError)
def _invalid(request: HttpRequest, exc: NinjaValidationError) -> JsonResponse:
    found = errors.from_pydantic(list(exc.errors))
    return errors.response(found.message, 400, found.field)


@hub.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
    return errors.response(str(exc), exc.status_code)
