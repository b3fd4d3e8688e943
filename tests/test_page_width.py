"""Code cells fit the rendered column: no chapter's code scrolls sideways on a laptop.

Chapter code lines are at most 88 characters (tests/test_notebooks.py); the book's
stylesheet ``book/_static/code-width.css`` sets the code font so that 88 of them fit the
column of a 1,280 px window with both sidebars. Checked in headless Debian chromium on
the built book (``server``, tests/conftest.py) at 1,280 and 1,440 px.
"""

from __future__ import annotations

import pytest

from bijepa_nb.book import runner as book

SCROLLING = """(sel) => Array.from(document.querySelectorAll(sel))
  .filter(e => e.innerText.trim() && e.scrollWidth > e.clientWidth + 2)
  .map(e => Math.max(...e.innerText.split('\\n').map(l => l.length)))"""


def wide_blocks(server, browser, width: int, selector: str) -> tuple[int, dict]:
    """Every chapter at ``width`` px: how many ``selector`` blocks it has, and per
    chapter the longest line of each block wider than its box."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    scrolling, blocks = {}, 0
    for nb in book.chapters():
        page.goto(f"{server.url}book/{nb.stem}.html")
        page.wait_for_load_state("load")
        blocks += page.locator(selector).count()
        wide = page.evaluate(SCROLLING, selector)
        if wide:
            scrolling[nb.stem] = wide
    page.close()
    return blocks, scrolling


@pytest.mark.parametrize("width", [1280, 1440])
def test_no_code_cell_scrolls_sideways(server, browser, width):
    cells, scrolling = wide_blocks(server, browser, width, "div.cell_input pre")
    assert cells > 100, f"only {cells} code cells found: is the book built?"
    assert not scrolling, f"code cells wider than the column at {width} px: {scrolling}"


@pytest.mark.parametrize("width", [1280, 390])
def test_no_printed_output_runs_off_the_column(server, browser, width):
    """Printed lines wrap in the column (code-width.css) rather than scroll: at a
    laptop's and a phone's width no output block is wider than its box."""
    blocks, scrolling = wide_blocks(server, browser, width, "div.cell_output pre")
    # the book prints 71 text outputs (the others are tables and figures)
    assert blocks > 50, f"only {blocks} printed outputs found: is the book built?"
    assert not scrolling, (
        f"printed lines wider than the column at {width} px: {scrolling}"
    )
