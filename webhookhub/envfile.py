"""`python -m webhookhub.envfile`: write `.env` with every setting commented out, on
the first `make run` (an existing file is never touched).

The settings come from the tables of docs/configuration.md, the one list of them, so
the file cannot drift from the documentation. django-environ reads `.env` at start-up, in
every process and shell (`./manage.py webhooks test` sees what the hub sees);
variables set in the environment win over it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "docs" / "configuration.md"
HEADER = """\
# webhookhub settings, read by every process (the hub, workers, ./manage.py commands).
# Uncomment a line and edit it; a variable set in the environment wins over this file.
# What each one does: docs/configuration.md.
"""
ONLY_FROM_ENVIRONMENT = {"WEBHOOKHUB_ENV_FILE"}  # which file to read cannot be in the file
ROW = re.compile(r"^\| (`[A-Z_][A-Z0-9_]*`(?:, `[A-Z_][A-Z0-9_]*`)*) \| ([^|]*) \| (.*) \|$")
LINK = re.compile(r"\[([^\]]+)\]\(([^)#]*)[^)]*\)")


def rows(text: str) -> list[tuple[str, str, str]]:
    """(name, default, meaning) of each variable of docs/configuration.md's tables (every
    table row whose first cell names variables). A row may name several (`HOST`, `PORT`
    with defaults `127.0.0.1`, `8000`), or shorten them (`DJANGO_SUPERUSER_USERNAME`,
    `_EMAIL`: DJANGO_SUPERUSER_EMAIL)."""
    found = []
    for line in text.splitlines():
        match = ROW.match(line)
        if not match:
            continue
        names = [n.strip("`") for n in match[1].split(", ")]
        first = names[0]
        names = [first.rsplit("_", 1)[0] + n if n.startswith("_") else n for n in names]
        defaults = match[2].split(", ") if len(names) > 1 else [match[2]]
        if len(defaults) != len(names):
            defaults = [match[2]] * len(names)
        found += [(name, default, match[3]) for name, default in zip(names, defaults, strict=True)
                  if name not in ONLY_FROM_ENVIRONMENT]  # fmt: skip
    return found


def _plain(text: str) -> str:
    """A cell as plain text: no code marks; a link as its text and the page it names."""
    text = LINK.sub(lambda m: f"{m[1]} in docs/{m[2]}" if m[2] else m[1], text)
    return text.replace("`", "").strip()


def render(text: str) -> str:
    lines = [HEADER]
    for name, default, meaning in rows(text):
        literal = _plain(default)
        prose = (" " in literal or "$" in literal or "…" in literal or literal.isupper()
                 or literal in {"unset", "empty"})  # fmt: skip
        shown = "" if prose else literal
        note = "" if shown else f"  (default: {literal})"
        lines.append(f"# {_plain(meaning)}{note}\n# {name}={shown}\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=ROOT / ".env")
    args = parser.parse_args(argv)
    if args.path.exists():
        return 0
    args.path.write_text(render(SOURCE.read_text()))
    args.path.chmod(0o600)  # it will hold keys and passwords
    print(f"Wrote {args.path.name}: every setting, commented out. Edit it to configure the hub.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
