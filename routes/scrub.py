"""Credentials out of a captured call: values masked by the name they are given under and
by their shape, at any depth, with the depth bounded.

By name: a key, form field or query parameter named like a credential (CREDENTIAL_NAME)
has its whole value masked, whatever it holds (but true, false and null, which say only
that a credential is set or not). By shape: in every string, whatever its
name, the hub's secrets and tokens, JWTs, PEM private keys, `Bearer`/`Basic`
authorization values, a URL's password and a page's CSRF token are masked, and so are
`name=value` and `"name": value` pairs with a credential's name (in text, a log line, a
cut body, JSON shown on a page); a string that is itself JSON is scrubbed as JSON.
Structures deeper than MAX_DEPTH are left out (a placeholder says so), so no input makes
the capture recurse without bound; what lies beyond the point a body is cut at is not
looked at (it is never shown), so a large body costs no more than a small one.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import regex

MASK = "********"
MAX_DEPTH = 32
DEEPER = f"[nested deeper than {MAX_DEPTH} levels: left out]"
MARGIN = 1024  # characters of a string looked at beyond the cut
_NAMES = (
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|auth(?!or(?:s|ed|ship)?(?![a-z]))|"
    r"csrf|session|cookie|credential|private[-_]?key|signature|header[-_]?values?|"
    r"^headers$|^sig$"
)
CREDENTIAL_NAME = regex.compile(_NAMES, regex.IGNORECASE)
# A secret's shape; `keep` is what stays before the mask (a secret recognised by it).
SECRET_SHAPE = regex.compile(
    r"whsec_[A-Za-z0-9+/=]+|whk_[A-Za-z0-9_\-]+|"
    r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*|"  # a JWT
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)|"
    r"(?P<keep>\b(?-i:Bearer|Basic)\s+)[A-Za-z0-9._~+/=\-]{8,}|"
    r"(?P<keep>(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*+://[^\s/:@\"'<>]*+:)[^\s/@\"'<>]++(?=@)|"
    r"(?P<keep>name=[\"']csrfmiddlewaretoken[\"'] value=[\"'])[^\"']+",
    regex.IGNORECASE | regex.DOTALL,
)
# In plain text: `password=…`, `"token": "…"`, `secret: …`; the key may be quoted, and
# the quotes may be HTML's (`&quot;`: JSON shown on a page). Keys are found first (each
# word once: no backtracking), and only a credential's value is looked at.
_QUOTE = r"(?:\"|'|&quot;|&#34;|&#x27;|&#39;)"
PAIR_KEY = regex.compile(rf"(?<![\w.\-])(?P<name>[\w.\-]++){_QUOTE}?[ \t]*[:=][ \t]*")
PAIR_VALUE = regex.compile(
    r"(?P<quote>&quot;|&#34;|&#x27;|&#39;|\"|')(?:.*?(?<!\\)(?P=quote)|.*$)"
    r"|[^\s&,;\"'<>}\]]+",
    regex.MULTILINE,
)


def is_credential(name: str) -> bool:
    """Whether a field called `name` holds a credential."""
    return bool(CREDENTIAL_NAME.search(name))


def scrubbed(value: Any, budget: float = math.inf) -> Any:
    """`value` (JSON data) with credentials masked by key name and by shape, at most
    MAX_DEPTH levels deep. `budget`: the characters the result is cut at when written;
    what lies wholly beyond it is not looked at (it is cut away unseen)."""
    return _Walk(budget).value(value, 0)


def text(value: str, depth: int = 0) -> str:
    """A string with secret shapes masked; JSON text scrubbed as JSON (and written back
    as JSON text); in other text, credential-named pairs masked as well."""
    parsed = json_in(value)
    if parsed is not None:
        return json.dumps(_Walk(math.inf).value(parsed, depth + 1), ensure_ascii=False)
    return _mask_pairs(shapes(value))


class _Walk:
    """One pass over a value, counting the characters it has passed (a lower bound of
    where they are written): a string is looked at up to MARGIN beyond the budget (so a
    secret across the cut is still seen whole), and the items after it are dropped."""

    def __init__(self, budget: float):
        self.left = budget

    def value(self, value: Any, depth: int) -> Any:
        if isinstance(value, dict | list) and value and depth >= MAX_DEPTH:
            return DEEPER
        if isinstance(value, dict):
            items = self._within(value.items())
            return {shapes(str(k)): self._field(str(k), v, depth) for k, v in items}
        if isinstance(value, list):
            return [self.value(v, depth + 1) for v in self._within(value)]
        if isinstance(value, str):
            return self._string(value, depth)
        self.left -= 1
        return value

    def _within(self, items: Iterable) -> Iterator:
        """The items up to the first that lies beyond the cut."""
        return itertools.takewhile(lambda _: self.left >= -MARGIN, items)

    def _field(self, key: str, value: Any, depth: int) -> Any:
        self.left -= len(key)
        if is_credential(key) and not (value is None or isinstance(value, bool)):
            return MASK  # a switch or an absence (`"github_signature": true`) tells nothing
        return self.value(value, depth + 1)

    def _string(self, value: str, depth: int) -> str:
        seen = max(int(min(self.left + MARGIN, len(value))), 0)
        self.left -= len(value)
        return text(value[:seen], depth)


def shapes(value: str) -> str:
    """A string with only secret shapes masked (a name's value: the name says nothing)."""
    return SECRET_SHAPE.sub(_mask_shape, value)


def json_in(value: str) -> dict | list | None:
    """The object or array `value` is the JSON text of, else None."""
    stripped = value.strip()
    if not stripped or stripped[0] + stripped[-1] not in ("{}", "[]"):
        return None
    try:
        parsed = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _mask_shape(match: regex.Match) -> str:
    return (match["keep"] or "") + MASK


def _mask_pairs(value: str) -> str:
    parts, done = [], 0
    for key in PAIR_KEY.finditer(value):
        if key.start() < done or not is_credential(key["name"]):
            continue
        pair = PAIR_VALUE.match(value, key.end())
        if pair is None:
            continue
        quote = pair["quote"] or ""
        parts += [value[done : key.end()], quote, MASK, quote]
        done = pair.end()
    parts.append(value[done:])
    return "".join(parts)
