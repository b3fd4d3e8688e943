"""Invariants of the committed chapters: executed at paper scale, no errors, a parameters cell."""

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def toc_notebooks():
    """The notebooks of ``_toc.yml``: its chapters and their sections (chapter 9's)."""
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    entries = list(toc.get("chapters", []))
    files = []
    while entries:
        entry = entries.pop(0)
        files.append(entry["file"])
        entries[:0] = entry.get("sections", [])
    return [REPO / f"{f}.ipynb" for f in files if (REPO / f"{f}.ipynb").exists()]


NOTEBOOKS = toc_notebooks()


def test_every_chapter_in_the_toc_is_a_notebook():
    assert len(NOTEBOOKS) >= 7
    assert sorted(p.name for p in (REPO / "book").glob("*.ipynb")) == sorted(
        p.name for p in NOTEBOOKS
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_chapter(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tags = lambda c: c.get("metadata", {}).get("tags", [])
    # a papermill parameters cell, every parameter typed and commented
    params = [c for c in code if "parameters" in tags(c)]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    src = "".join(params[0]["source"])
    for line in src.splitlines():
        if line.strip():
            assert re.match(r"^\w+: \w+ = .+  # \S", line), (
                f"parameter line not typed and commented: {line!r}"
            )
    names = [t.target.id for t in ast.parse(src).body]
    assert "quick" in names and "device" in names
    # the cell after it validates the parameters
    after = code[code.index(params[0]) + 1]
    assert "check_" in "".join(after["source"]) and "quick_mode(" in "".join(
        after["source"]
    )
    # executed, with outputs, at paper scale, without errors
    assert all(c.get("execution_count") for c in code), "every code cell was executed"
    assert sum(bool(c.get("outputs")) for c in code) >= 3, "committed with outputs"
    errors = [
        o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors, f"error outputs committed: {[e.get('ename') for e in errors]}"
    assert not any("injected-parameters" in tags(c) for c in code), (
        "outputs come from a run with injected parameters"
    )
    assert nb["metadata"].get("papermill", {}).get("parameters", {}) == {}, (
        "executed with non-default parameters"
    )
    streams = "".join(
        "".join(o.get("text", ""))
        for c in code
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )
    assert "quick subset" not in streams and "Traceback" not in streams
    # numbered figures carry captions
    figs = [c for c in code if "mystnb" in c.get("metadata", {})]
    assert figs, "at least one captioned figure"
    for c in figs:
        fig = c["metadata"]["mystnb"]["figure"]
        assert fig["caption"] and fig["name"].startswith("fig-")
        images = ("image/png", "image/svg+xml")  # plotting.figure_output picks one
        assert any(
            m in o.get("data", {}) for o in c.get("outputs", []) for m in images
        ), f"figure {fig['name']} has no image"


def test_figure_names_are_unique():
    names = [
        c["metadata"]["mystnb"]["figure"]["name"]
        for p in NOTEBOOKS
        for c in json.loads(p.read_text())["cells"]
        if "mystnb" in c.get("metadata", {})
    ]
    assert len(names) == len(set(names))
