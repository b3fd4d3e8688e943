"""Figures read at the column's width: text >= 9 px as displayed, alt text = the caption.

``bijepa_nb.analysis.plotting.style`` draws every figure 7 in wide (the 672 px column of
a 1,280 px window), with 9-10 pt text, and each figure file records its smallest font
size (``FONT_RECORD``: a PNG tEXt chunk, an SVG description) beside its resolution
(a PNG's pHYs chunk; an SVG is in points, 96 px per inch). The browser test opens every
page of the built book in chromium and, for each figure, multiplies that smallest size
by the figure's displayed scale (clientWidth / naturalWidth): the product must be at
least ``MIN_TEXT_PX``. A figure file without the record counts as 10 pt (matplotlib's
default size, larger than the 7-8 pt legends such figures used) and fails anyway. Every
figure's alt text must be words, not a file name.
"""

from __future__ import annotations

import base64
import re
import struct
import urllib.request

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bijepa_nb.analysis import plotting
from bijepa_nb.book import runner as book
from bijepa_nb.core.training import History

PAGES = ["book/intro.html"] + [f"book/{nb.stem}.html" for nb in book.chapters()]

#: Each figure in the article: its file, alt text, displayed and natural widths.
FIGURES = """() => [...document.querySelectorAll('article img')].map(i => ({
  src: i.currentSrc || i.src,
  alt: i.getAttribute('alt') || '',
  inFigure: !!i.closest('figure'),
  client: i.clientWidth,
  natural: i.naturalWidth,
  column: i.closest('article').clientWidth,
}))"""

#: One token that names a file: a path, an image file name or a content hash.
PATH_LIKE = re.compile(r"^\S*(/\S*|\.(png|svg|jpe?g|gif)|[0-9a-f]{16,}\S*)$", re.I)


def png_record(data: bytes) -> tuple[float | None, float | None]:
    """(smallest font in pt from the FONT_RECORD tEXt chunk, dpi from pHYs) of a PNG."""
    font = dpi = None
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            if key.decode("latin-1") == plotting.FONT_RECORD:
                font = float(value)
        elif kind == b"pHYs":
            x, _, unit = struct.unpack(">IIB", body)
            if unit == 1:  # pixels per metre
                dpi = x * 0.0254
        pos += 12 + length
    return font, dpi


def file_record(data: bytes, src: str) -> tuple[float | None, float]:
    """(smallest font in pt or None, natural pixels per inch) of a figure file."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        font, dpi = png_record(data)
        return font, dpi or 72.0  # no pHYs: browsers and matplotlib assume 72
    if src.endswith(".svg") or data.lstrip()[:5] in (b"<?xml", b"<svg "):
        m = re.search(rb"%s=([\d.]+)" % plotting.FONT_RECORD.encode(), data)
        return (float(m.group(1)) if m else None), 96.0  # points: 96 px per inch
    raise AssertionError(f"{src}: neither PNG nor SVG")


def displayed_text_px(font_pt: float, ppi: float, client: int, natural: int) -> float:
    """CSS px of ``font_pt`` text in an image of ``ppi`` natural px per inch shown
    ``client`` px wide out of ``natural``."""
    return font_pt / 72 * ppi * client / natural


def alt_problem(alt: str) -> str | None:
    if not alt.strip():
        return "no alt text"
    if PATH_LIKE.search(alt.strip()):
        return f"alt text is a file path: {alt!r}"
    if len(alt.split()) < 3:
        return f"alt text is not a description: {alt!r}"
    return None


def measure(server, browser, width: int) -> tuple[list[str], int]:
    """Problems (one line each) of every figure on every page at ``width`` px, and the
    number of figures seen."""
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    problems, seen, cache = [], 0, {}
    try:
        for name in PAGES:
            page.goto(server.url + name)
            page.wait_for_load_state("load")
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            if overflow > 1:
                problems.append(f"{name}: the page scrolls sideways by {overflow} px")
            for f in page.evaluate(FIGURES):
                if not f["natural"]:
                    problems.append(f"{name}: image {f['src']} did not load")
                    continue
                if f["src"] not in cache:
                    with urllib.request.urlopen(f["src"]) as r:
                        cache[f["src"]] = file_record(r.read(), f["src"])
                font, ppi = cache[f["src"]]
                seen += 1
                where = f"{name} at {width} px, {f['src'].rsplit('/', 1)[-1][:12]}"
                px = displayed_text_px(font or 10.0, ppi, f["client"], f["natural"])
                if font is None:
                    problems.append(
                        f"{where}: no font record (not drawn through plotting.style); "
                        f"10 pt would show at {px:.1f} px "
                        f"({f['client']} of {f['natural']} px, column {f['column']} px)"
                    )
                elif px < plotting.MIN_TEXT_PX - 1e-6:
                    problems.append(
                        f"{where}: {font:g} pt text shows at {px:.1f} px "
                        f"({f['client']} of {f['natural']} px at {ppi:.0f} px/in, "
                        f"column {f['column']} px)"
                    )
                if f["inFigure"] and (why := alt_problem(f["alt"])):
                    problems.append(f"{where}: {why}")
    finally:
        ctx.close()
    return problems, seen


@pytest.mark.parametrize("width", [1280, 390])
def test_figure_text_is_readable_and_alt_is_the_caption(server, browser, width):
    problems, seen = measure(server, browser, width)
    assert seen > 20, f"only {seen} figures found: is the book built with outputs?"
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


# ------------------------------------------------------------- the record and the rule


def test_displayed_size_and_alt_rules():
    assert displayed_text_px(9, 144, 672, 1008) == pytest.approx(12.0)
    assert displayed_text_px(7, 100, 672, 1600) < plotting.MIN_TEXT_PX  # old 3-panel
    assert alt_problem("") and alt_problem("b1946ac92492d2347c6235b4d2611184.png")
    assert alt_problem("../_images/abc.svg") and alt_problem("figure")
    assert alt_problem("Training loss of classic JEPA on sine waves.") is None
    assert alt_problem("Three waves with the context/target split.") is None


def _history(n: int = 60) -> History:
    steps = np.arange(0, n, 10)
    return History(
        np.linspace(2, 1, n),
        np.linspace(2, 1, n),
        np.linspace(1, 0.5, n),
        steps,
        np.linspace(1, 3, len(steps)),
        np.linspace(1, 2.5, len(steps)),
    )


def _figures():
    """One figure of each kind the chapters show (small synthetic inputs)."""
    alphas, taus = [0.0, 0.5, 1.0], [0.9, 0.99, 0.996, 0.999]
    v = np.random.default_rng(0).uniform(0.1, 1.0, (3, 3, 4, 5))
    rows = {"expressive": v[0, :, 0], "restrictive": v[1, :, 0]}
    h = {"unconstrained": _history(), "expressive": _history()}
    yield "architectures", plotting.architectures()
    yield "loss_and_norms", plotting.loss_and_norms(h, window=5)
    yield (
        "seed_dot_panels",
        plotting.seed_dot_panels(
            {"a": [{"x": 1.0}, {"x": 2.0}], "b": [{"x": 3.0}, {"x": 4.0}]},
            {"first": "x", "second": "x"},
        ),
    )
    yield (
        "map_row",
        plotting.map_row(
            {"unconstrained": v[0, :, :, 0], "expressive": v[1, :, :, 0]},
            alphas,
            taus,
            marks={"expressive": {"paper": (0.5, 0.996), "best": (0.0, 0.9)}},
        ),
    )
    yield (
        "explosion_maps",
        plotting.explosion_maps(
            np.zeros((3, 4)),
            v[0, :, :, 0],
            v[1, :, :, 0],
            alphas,
            taus,
            5,
            "m",
            (0.5, 0.996),
        ),
    )
    yield "profile_row", plotting.profile_row(alphas, {"B": rows, "A": rows}, "α")
    yield (
        "seed_bands",
        plotting.seed_bands(
            [{"a": (np.arange(3), v[0, :, 0])}] * 4, ["one", "two", "three", "four"]
        ),
    )
    yield (
        "steps_figure",
        plotting.steps_figure(
            [0, 10, 20, 30, 40],
            {"classic": {"k": v[0, 0], "j": v[1, 0]}},
            {"k": {"raw pixels": 0.5}},
            [("k", "accuracy"), ("j", "mse"), ("k", "rank")],
            {"classic": "Classic JEPA"},
        ),
    )
    fig, ax = plt.subplots(figsize=plotting.panel_size())
    plotting.sequences(np.sin(np.arange(30)).reshape(1, -1).repeat(3, 0), 20, ax=ax)
    yield "sequences", fig


@pytest.mark.parametrize("name,fig", list(_figures()), ids=lambda x: str(x)[:20])
def test_each_figure_fits_the_column_with_readable_text(name, fig):
    plotting.style()
    w, h = fig.get_size_inches()
    assert w <= plotting.COLUMN_IN + 1e-9, f"{name}: {w:g} in wide"
    assert plotting.min_font_pt(fig) >= plotting.SMALL_FONT_PT, name
    for ax in fig.axes:  # at most two panels side by side (colour bars aside)
        if ax.get_label() == "<colorbar>":
            continue
        y0, y1 = ax.get_position().y0, ax.get_position().y1
        beside = [
            a
            for a in fig.axes
            if a.get_label() != "<colorbar>"
            and a.get_position().y0 < y1 - 0.02
            and a.get_position().y1 > y0 + 0.02
            and a.get_visible()
            and a.axison
        ]
        assert len(beside) <= 2, f"{name}: {len(beside)} panels in one row"
    kind, data, meta = plotting.figure_output(fig)
    if kind == "image/png":
        font, dpi = png_record(base64.b64decode(data))
        assert dpi == pytest.approx(plotting.DPI, rel=1e-3)
        assert meta["width"] <= plotting.COLUMN_IN * plotting.CSS_PX_PER_IN + 1
    else:
        font, _ = file_record(data.encode(), "x.svg")
    assert font == plotting.min_font_pt(fig)
    plt.close(fig)


def test_panel_size_refuses_three_columns():
    with pytest.raises(ValueError, match="ncols must be 1 or 2"):
        plotting.panel_size(3)
    with pytest.raises(ValueError, match="nrows must be an integer >= 1"):
        plotting.panel_size(1, 0)
