"""Every Markdown link to a heading in README.md and docs/*.md, within a file or across files,
leads to a heading that exists: the anchors are made as GitHub makes them (lower case, each space
a `-`, punctuation dropped, Chinese kept, a repeated heading numbered `-1`, `-2`)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_LINK = re.compile(r"\]\(([^()\s]*#[^()\s]*)\)")
_HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (github-slugger), its inline Markdown read as text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link (or image): its words
    text = re.sub(r"[`*]|(?<!\w)_|_(?!\w)", "", text)  # code and emphasis marks
    kept = (
        ch
        for ch in text.lower()
        if ch in " -_" or unicodedata.category(ch)[0] in "LNM"  # letters, numbers, marks
    )
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors a page's headings (outside code blocks) and HTML anchors make."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    found: set[str] = set(_HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """Each link to a heading in a page (outside code blocks), with its line."""
    text = page.read_text(encoding="utf-8")
    blank = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # code blocks, lines kept
    return [
        (blank.count("\n", 0, m.start()) + 1, m.group(1))
        for m in _LINK.finditer(blank)
        if not m.group(1).startswith(("http://", "https://"))
    ]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("The platform's limits", "the-platforms-limits"),
        ("WeCom (企业微信)", "wecom-企业微信"),
        ("Rich messages: attachments and mentions", "rich-messages-attachments-and-mentions"),
        ("`sopdsl plan` and its calendar", "sopdsl-plan-and-its-calendar"),
        ("Staff tasks, then `assign`", "staff-tasks-then-assign"),
        ("群日历（group calendar）", "群日历group-calendar"),
    ],
)
def test_anchors_are_made_as_github_makes_them(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_to_a_heading_finds_it(page: Path) -> None:
    broken = []
    for line, target in links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / unquote(path)).resolve() if path else page
        if linked.suffix != ".md" or not linked.is_file():
            broken.append(f"{page.name}:{line}: {target} (no such page)")
        elif unquote(anchor) not in anchors(linked):
            broken.append(f"{page.name}:{line}: {target} (no heading #{unquote(anchor)} in {linked.name})")
    assert broken == []
