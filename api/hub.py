"""The /api/v1 NinjaAPI: its routers, the kit's token auth and JSON refusals (in the
kit's plain wording), and one OpenAPI document for /api/v1 and the /v2 job API (the job
API is its own NinjaAPI, mounted at /v2/)."""

from __future__ import annotations

from ninja import NinjaAPI

from api import ingest, routes, webhooks
from apikit import handlers
from apikit.auth import TokenAuth
from apikit.errors import PLAIN
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
hub.add_router("/", routes.router)
handlers.install(hub, PLAIN)
