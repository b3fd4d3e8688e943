"""Tables on the rendered pages: each fits its column, or scrolls sideways and says so.

pydata-sphinx-theme wraps every table in a container that scrolls (overflow-x: auto);
``book/_static/table-scroll.js`` adds a hint line above a table wider than its column
and marks the container. At a phone's 390 px and at 1280 px, on the pages with the
widest tables, every table is either within its container or scrolls with the hint.
"""

from __future__ import annotations

import pytest

PAGES = [
    "book/intro.html",
    "book/04_sine.html",
    "book/05_lorenz.html",
    "book/08_verdict.html",
    "book/ledger.html",
]

MEASURE = """() => [...document.querySelectorAll('article table')].map(t => {
  const box = t.closest('.pst-scrollable-table-container');
  const hint = box && box.previousElementSibling;
  return {
    wide: t.scrollWidth > (box ? box.clientWidth : t.parentElement.clientWidth) + 1,
    scrolls: !!box && ['auto', 'scroll'].includes(getComputedStyle(box).overflowX),
    marked: !!box && box.classList.contains('table-scrolls'),
    hint: !!hint && hint.classList.contains('table-scroll-hint'),
    right: t.getBoundingClientRect().right,
    boxRight: box ? box.getBoundingClientRect().right : null,
  };
})"""


@pytest.mark.parametrize("width", [390, 1280])
def test_every_table_fits_or_scrolls_with_a_cue(server, browser, width):
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    wide_seen = 0
    try:
        for name in PAGES:
            page.goto(server.url + name)
            page.wait_for_load_state("load")
            tables = page.evaluate(MEASURE)
            assert tables, f"{name}: no tables"
            for i, t in enumerate(tables):
                if not t["wide"]:
                    continue
                wide_seen += 1
                where = f"{name} at {width} px, table {i + 1}"
                assert t["scrolls"], f"{where}: wider than its column and cut off"
                assert t["marked"] and t["hint"], (
                    f"{where}: scrolls with no visible cue"
                )
    finally:
        ctx.close()
    if width == 390:
        assert wide_seen, "no wide table at 390 px: the check above never ran"
