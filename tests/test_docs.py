"""The documentation a newcomer reads: README.md and the pages in docs/.

- every relative link resolves: to a file that exists and, for `#anchor`, to a heading
  of that file (GitHub's slugs);
- the README has a contents index linking every page of docs/;
- each README section (a `## ` heading to the next) fits one screenful;
- no development history in them (sessions, turns).

Nothing is run: the files are read as text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
SCREENFUL = 60  # lines of a README section, its heading included

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.S)
LINK = re.compile(r"(?<!\!)\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto: …


def _prose(text: str) -> str:
    """The text without code blocks (a link inside one is not a link)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text as rendered (code spans, emphasis and
    links reduced to their text), lower-cased, punctuation dropped except `-` and `_`,
    each space a hyphen."""
    parts = re.split(r"(`[^`]*`)", heading)  # code spans keep their text as it is
    text = "".join(
        part.strip("`") if part.startswith("`") else
        re.sub(r"<[^>]+>|\*", "", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", part))
        for part in parts
    )  # fmt: skip
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in `path`; a repeated one gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(_prose(path.read_text())):
        base = slug(title)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def links(path: Path) -> list[str]:
    """The targets of the markdown links in `path`, outside code blocks and spans."""
    text = CODE_SPAN.sub("", _prose(path.read_text()))
    return LINK.findall(text)


def broken_links(path: Path) -> list[str]:
    """Relative links of `path` that name no file, or no heading of the file."""
    broken = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert not broken_links(page)


def test_the_readme_indexes_every_docs_page():
    readme_links = {target.partition("#")[0] for target in links(README)}
    pages = sorted(DOCS.glob("*.md"))
    assert len(pages) >= 10
    assert not [p.name for p in pages if f"docs/{p.name}" not in readme_links]
    assert "## Contents" in README.read_text() or "## Documentation" in README.read_text()


def sections(text: str) -> list[tuple[str, int]]:
    """(heading, line count) of each `## ` section: from its heading to the next (code
    blocks included, a `## ` inside one is not a heading); the part before the first is
    a section too."""
    found: list[tuple[str, int]] = []
    title, length, fenced = "(top)", 0, False
    for line in text.splitlines():
        if line.startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            found.append((title, length))
            title, length = line, 0
        length += 1
    found.append((title, length))
    return found


def test_every_readme_section_fits_one_screenful():
    text = README.read_text()
    too_long = [(title, n) for title, n in sections(text) if n > SCREENFUL]
    assert not too_long
    assert 100 <= len(text.splitlines()) <= 220


def test_no_development_history_in_the_docs():
    history = re.compile(r"\bsession \d+|\bturn \d+\b|\bwas tried and left\b", re.I)
    found = [
        (page.name, match.group()) for page in PAGES for match in history.finditer(page.read_text())
    ]
    assert not found


# The checker itself, on pages made for the occasion: a broken link must be seen.


def test_slugs_follow_githubs_rules():
    assert slug("An event from `hooks.emit` to its Attempt row") == (
        "an-event-from-hooksemit-to-its-attempt-row"
    )
    assert slug("A job from `POST /v2/<endpoint>/run` to its callback") == (
        "a-job-from-post-v2endpointrun-to-its-callback"
    )
    assert slug("SwarmUI's server hooks") == "swarmuis-server-hooks"
    assert slug("`./manage.py webhooks`") == "managepy-webhooks"
    assert slug("Metrics (Prometheus)") == "metrics-prometheus"
    assert slug("The hand-written fast paths, and why") == "the-hand-written-fast-paths-and-why"


def test_the_checker_sees_a_broken_file_link_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A part\n\n## A part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Here\n\n"
        "[ok](other.md) [ok](other.md#a-part) [ok](other.md#a-part-1) [ok](#here)\n"
        "[site](https://example.com/x) `[not a link](nowhere.md)`\n\n"
        "```\n[in a block](nowhere.md)\n```\n\n"
        "[gone](missing.md) [no heading](other.md#nope) [nor here](#there)\n"
    )
    assert broken_links(page) == [
        "missing.md (no such file)",
        "other.md#nope (no heading #nope in other.md)",
        "#there (no heading #there in page.md)",
    ]
