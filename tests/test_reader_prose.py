"""The book speaks to its readers about the method and the results, nothing else.

What a reader sees holds no revision history ("the first version of this chapter
said ..."), no dates of runs and no words about how the work was organised. Where a
finding changed, the page states the finding. Scanned: the markdown cells of every
chapter, the string literals of its code cells (printed text, table headers), its stored
text outputs, ``book/*.md`` and ``README.md``. References such as "Huang (2026)" or
"Holm 1979" are not dates of runs and do not match.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from bijepa_nb.book import runner as book

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"

#: What must not appear, each with the reason a reader would trip over it.
FORBIDDEN: dict[str, re.Pattern[str]] = {
    name: re.compile(rx, re.IGNORECASE)
    for name, rx in {
        "a version of the text": (
            r"\b(?:earlier|first|previous|former|original|older|old|new)\b"
            r"[\w\s-]{0,24}?\bversions?\b"
        ),
        "a version of the page": r"\bversions? of (?:this|the) (?:chapter|book|page)\b",
        "what the page once said": (
            r"\b(?:this|the) (?:chapter|book|page|table|section)"
            r" (?:once|used to|originally|previously|formerly|now)\b"
        ),
        "what we once said": (
            r"\bwe (?:first|once|originally|previously)"
            r" (?:said|wrote|read|reported|claimed|found|used)\b"
        ),
        "an earlier run": r"\b(?:an? |the )?(?:earlier|previous|older) runs?\b",
        "previously / formerly": r"\b(?:previously|formerly)\b",
        "no longer (a change)": r"\bno longer (?:mistakes|says|claims|reads|uses)\b",
        "sessions": r"\bsessions?\b",
        "closing notes": r"\bclosing notes?\b",
        "engineers": r"\bengineers?\b",
        "issue numbers": r"\bissues? #?\d+",
        "a day and month": rf"\b\d{{1,2}} {_MONTH},? 20\d\d\b",
        "a month and day": rf"\b{_MONTH} \d{{1,2}},? 20\d\d\b",
        "an ISO date": r"\b20\d\d-\d\d-\d\d\b",
    }.items()
}


def strings_in_code(source: str) -> list[str]:
    """String literals of a code cell (f-strings by their literal parts)."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return [source]
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def reader_text(nb: Path) -> list[tuple[str, str]]:
    """(where, text) for everything of a chapter that a reader sees as words."""
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    out: list[tuple[str, str]] = []
    for i, cell in enumerate(cells):
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            out.append((f"cell {i} (markdown)", src))
        if cell["cell_type"] != "code":
            continue
        out += [(f"cell {i} (string in code)", s) for s in strings_in_code(src)]
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            for text in (o.get("text"), data.get("text/markdown")):
                if text:
                    out.append((f"cell {i} (output)", "".join(text)))
    return out


def hits(text: str) -> list[str]:
    found = []
    for name, rx in FORBIDDEN.items():
        for m in rx.finditer(text):
            lo, hi = max(0, m.start() - 40), min(len(text), m.end() + 40)
            snippet = " ".join(text[lo:hi].split())
            found.append(f"{name}: ...{snippet}...")
    return found


@pytest.mark.parametrize("nb", book.chapters(), ids=lambda p: p.stem)
def test_chapter_speaks_to_readers(nb: Path) -> None:
    bad = [f"{where}: {h}" for where, text in reader_text(nb) for h in hits(text)]
    assert not bad, f"{nb.name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_speaks_to_readers(page: Path) -> None:
    bad = hits(page.read_text(encoding="utf-8"))
    assert not bad, f"{page.name}:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "text",
    [
        "The first version of this chapter said so.",
        "an earlier version credited the quadratic form",
        "The earlier 320-step version of this chapter judged it",
        "the table now shows both",
        "because it no longer mistakes the sine's curvature for noise",
        "results of the session on 25 Nov 2026",
        "run on 2026-11-25",
        "closed by issue 20",
        "as the engineers noted",
    ],
)
def test_rules_catch_history(text: str) -> None:
    assert hits(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Y. Huang (2026). *BiJEPA*, §3.1.",
        "S. Holm (1979). A simple sequentially rejective multiple test procedure.",
        "A second version calibrates the noise separately near the lobe switch.",
        "The first checkpoint that beats the untrained encoder.",
        "second differences mistake the sine's curvature for noise",
        "Rerun with other seeds: does the verdict change?",
    ],
)
def test_rules_spare_findings(text: str) -> None:
    assert not hits(text), hits(text)


@pytest.mark.parametrize("nb", book.chapters(), ids=lambda p: p.stem)
def test_markdown_holds_no_control_characters(nb: Path) -> None:
    """A string written with "\\a" instead of "\\\\a" turns $\\alpha$ into BEL + "lpha"
    (the page then shows "lpha"); no markdown cell holds a control character."""
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    bad = [
        (i, repr(m.group()), "".join(c["source"])[max(0, m.start() - 20) : m.end() + 8])
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown"
        for m in re.finditer(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "".join(c["source"]))
    ]
    assert not bad, f"{nb.name}: control characters in markdown cells {bad}"
