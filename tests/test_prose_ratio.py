"""Chapters read as chapters: at least as many characters of prose as of code (issue 12).

Measured by ``bijepa_nb.book.runner.prose_and_code`` (markdown cells against all code cells,
hidden ones included); ``python -m bijepa_nb.book --ratios`` prints the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bijepa_nb.book import runner as book

#: Chapters whose prose was still shorter than their code when this list was written
#: (``--ratios``, 25 Nov 2026), each with a floor 0.05 to 0.1 under its ratio then. A
#: chapter may not fall below its floor, and leaves the list once it reaches 1.
BELOW_ONE: dict[str, float] = {
    # chapter 9's section pages: each carries its own parameters, checks and setup so
    # that it runs alone; their prose is to be lengthened (or the setup shared)
    "09_1_past": 0.58,
    "09_2_alpha": 0.62,
    "09_3_invertible": 0.47,
    "09_4_futures": 0.56,
    "09_5_anomalies": 0.72,
    "09_6_explosion": 0.55,
}
#: Chapters being reorganised by a change in flight (none now).
REORGANISING: set[str] = set()


def ratio(nb: Path) -> float:
    prose, code, _ = book.prose_and_code(nb)
    return prose / code if code else float("inf")


@pytest.mark.parametrize("nb", book.chapters(), ids=lambda p: p.stem)
def test_prose_at_least_code(nb: Path) -> None:
    if nb.stem in REORGANISING:
        pytest.skip(f"{nb.stem} is being reorganised")
    r = ratio(nb)
    if nb.stem in BELOW_ONE:
        assert r >= BELOW_ONE[nb.stem], f"{nb.stem}: prose/code fell to {r:.2f}"
        assert r < 1, f"{nb.stem} reached prose/code {r:.2f}: remove it from BELOW_ONE"
    else:
        assert r >= 1, f"{nb.stem}: prose/code {r:.2f} < 1"


def test_lists_name_real_chapters() -> None:
    stems = {nb.stem for nb in book.chapters()}
    assert set(BELOW_ONE) | REORGANISING <= stems


def test_prose_and_code_counts_cells(tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Title\n\nfive w"),  # 15 characters
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_code_cell("import sys", metadata={"tags": ["remove-cell"]}),
            nbformat.v4.new_raw_cell("not counted"),
        ]
    )
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    assert book.prose_and_code(path) == (15, 15, 10)
    table = book.ratios_table([path])
    assert table.splitlines()[1].split() == ["01_x", "15", "15", "(", "10)", "1.00"]
