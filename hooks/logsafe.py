"""What a log line may say about a URL: its scheme, host, port and path, never its
userinfo, query or fragment, where receivers keep tokens (a job's callback URL's
`?token=`, `https://user:pass@…`). The attempt history keeps the whole URL for its
owner; the log is for operators and log shippers, who need only where it went."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

DROPPED = "…"  # stands for a query or fragment left out, so the line says one was there
# A URL in running text: up to a space or quote, less the punctuation that ends a clause.
_URL = re.compile(r"""\bhttps?://[^\s'"<>]*[^\s'"<>.,;:!?)]""", re.IGNORECASE)


def url(value: str) -> str:
    """`value` without its userinfo, query and fragment (each dropped part marked)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    query = DROPPED if parts.query else ""
    fragment = DROPPED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def text(value: str) -> str:
    """`value` (an error message, say) with every http(s) URL in it shortened by `url`."""
    return _URL.sub(lambda found: url(found.group(0)), value)


def endpoint(key: int | str) -> str:
    """A delivery's endpoint as the pump keys it (a webhook's id or a target URL)."""
    return f"webhook {key}" if isinstance(key, int) else url(key)
