"""RunPod's wording: how the job API (/v2) words the refusals the API kit makes for it
(a missing token, a body its schemas refuse), in one mapping; the views word their own
("No job …"). A client reads the status and `field`; the words are for the person."""

from __future__ import annotations

from apikit.errors import Wording
from jobs.schemas import MAX_MS, MAX_TAGS_PER_CALL, MIN_TIMEOUT_MS, MIN_TTL_MS

WRONG_METHOD = "Use {method} here."
NO_ROUTE = "No job API route {path!r}."
TAGS = "'tags' must be a list of short strings."
SOME_TAGS = "'tags' must be a non-empty list of short strings."


def _milliseconds(key: str, low: int) -> dict[str, str]:
    return {
        "int_type": f"policy.{key} must be a whole number of milliseconds.",
        "*": f"policy.{key} must be between {low} and {MAX_MS} ms.",
    }


RUNPOD = Wording(
    unauthorized="Unauthorized: send Authorization: Bearer <API token> (or the bare token, "
    "as RunPod's examples do).",
    fields={
        "input": {
            "missing": "'input' is required.",
            "input_too_large": "'input' is {size} bytes; the limit is {limit}.",
            "*": "'input' must be a JSON object.",
        },
        "webhook": {
            "string_too_long": "'webhook' is longer than {max_length} characters.",
            "url_refused": "{reason}",
            "*": "'webhook' must be a URL string.",
        },
        "policy": {"*": "'policy' must be a JSON object."},
        "policy.executionTimeout": _milliseconds("executionTimeout", MIN_TIMEOUT_MS),
        "policy.ttl": _milliseconds("ttl", MIN_TTL_MS),
        "policy.lowPriority": {"*": "policy.lowPriority must be true or false."},
        "policy.webhooks": {"*": "policy.webhooks must be {expected}."},
        "policy.callbackRule": {"*": "policy.callbackRule must be {expected}."},
        "tags": {
            "missing": SOME_TAGS,
            "too_short": SOME_TAGS,
            "too_long": f"At most {MAX_TAGS_PER_CALL} tags per request.",
            "*": TAGS,
        },
        "namespace": {"*": "'namespace' must be a namespace's path, e.g. \"acme/ci\"."},
    },
)
