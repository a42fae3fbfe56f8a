"""The hub's HTTP API under /api/v1 (django-ninja): the event ingest for outside
producers and the OpenAPI document that also describes the /v2 job API."""
