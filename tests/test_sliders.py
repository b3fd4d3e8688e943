"""The playground's sliders work on the built static page, in a real browser, offline.

Playwright drives Debian's chromium (``/usr/bin/chromium``, ``--no-sandbox``; no
``playwright install``) on chapter 7 of the BUILT book, served on 127.0.0.1 (``server``
in tests/conftest.py, over the session build ``book_build``). It moves the alpha and
EMA-momentum sliders with the keyboard (ipywidgets 8 sliders are noUiSlider: focus
``.noUi-handle``, press ArrowRight/ArrowLeft; each slider's row ``.bijepa-slider-row``
has a read-only readout ``.bijepa-readout``) and changes the mode menu; after each move
exactly the leaf of the new grid point must be visible (``<div class="bijepa-point"
data-mode data-alpha data-tau>``, written by ``bijepa_nb.book.widgets.sweep_explorer``) and
its printed numbers must equal those computed here from the sweep JSON the chapter
loaded: the page's note names that file (``data-maps``, relative to book/) and its
content hash (``data-digest``). Every request the page makes must stay on 127.0.0.1.

``test_playground_fits_the_screen_and_is_accessible`` checks the panel at 390 px (a
phone; the text column is 358 px) and 1280 px: every control row, track and readout
inside the column, readouts that cannot be typed into, the theme's focus ring on the
handle reached with Tab, ``aria-valuetext`` = the readout ("α = 0.5", not the stop
number), and arrow keys and mouse drags that still switch the shown grid point.

``BIJEPA_BOOK_HTML=<folder>`` tests an already built HTML folder instead of building
the book (development: a scratch copy of the book whose chapter 7 was executed with
``-p maps_path <synthetic dev file>``). Skipped without chromium unless ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bijepa_nb.analysis.stats import geometric_mean_ci
from bijepa_nb.book.widgets import MAKE_MAPS, POINT_METRICS, sweep_digest

REPO = Path(__file__).resolve().parents[1]
PAGE = "book/07_playground.html"
HTML_ENV = "BIJEPA_BOOK_HTML"
# Missing files (console "Failed to load resource") are checked in the server's log
# instead, which names them. Every other console error fails the test.
KNOWN_PAGE_ERRORS = ("Failed to load resource",)
#: The sliders' descriptions, which name their rows (``.bijepa-slider-row``).
SLIDERS = {"alpha": "alpha (1 = classic)", "tau": "EMA momentum τ"}
SYMBOLS = {"alpha": "α", "tau": "τ"}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def site(request):
    """The built HTML on 127.0.0.1: ``$BIJEPA_BOOK_HTML`` if set, else the session build."""
    folder = os.environ.get(HTML_ENV)
    if not folder:
        yield request.getfixturevalue("server")
        return
    if not (Path(folder) / PAGE).is_file():
        pytest.fail(f"{HTML_ENV}={folder} has no {PAGE}")
    with request.getfixturevalue("html_server")(Path(folder)) as srv:
        yield srv


# ---------------------------------------------------------------------------- helpers
def _expected_numbers(point: dict) -> dict[str, str]:
    """What the leaf must print, computed independently of bijepa_nb.book.widgets."""
    out = {}
    for key in POINT_METRICS:
        vals = [v for v in point["per_seed"][key] if v is not None and math.isfinite(v)]
        if not vals:
            out[key] = "n/a (no seed finished)"
            continue
        ci = geometric_mean_ci(vals)
        if key.startswith("B_adam"):
            out[key] = f"{ci.mean:.4g}"
        elif len(vals) == 1:
            out[key] = f"{ci.mean:.4g} (one seed, no interval)"
        else:
            out[key] = f"{ci.mean:.4g} [{ci.low:.4g}, {ci.high:.4g}]"
    div = point["diverged_at"]
    out["diverged"] = f"{sum(d is not None for d in div)} of {len(div)}"
    return out


def _visible_points(page) -> list[tuple[str, str, str]]:
    return page.evaluate("""() => [...document.querySelectorAll('.bijepa-point')]
        .filter(e => e.offsetParent !== null && e.getClientRects().length > 0)
        .map(e => [e.dataset.mode, e.dataset.alpha, e.dataset.tau])""")


def _printed_numbers(page) -> dict[str, str]:
    return page.evaluate("""() => {
        const shown = [...document.querySelectorAll('.bijepa-point')]
            .filter(e => e.offsetParent !== null);
        const out = {};
        for (const s of shown[0].querySelectorAll('.bijepa-num')) {
            out[s.dataset.key] = s.textContent;
        }
        return out; }""")


def _readout_value(row) -> str:
    """The value a slider row's read-only readout shows ("α = 0.5" -> "0.5")."""
    text = row.locator(".bijepa-readout").inner_text().strip()
    assert " = " in text, f"readout {text!r} is not 'symbol = value'"
    return text.split(" = ", 1)[1]


def _load_sweep_of_page(page) -> tuple[dict, str]:
    note = page.locator(".bijepa-note[data-view='precomputed']")
    maps, digest = note.get_attribute("data-maps"), note.get_attribute("data-digest")
    assert maps, "the note names no maps file (data-maps is empty)"
    path = Path(maps) if Path(maps).is_absolute() else REPO / "book" / maps
    assert path.is_file(), f"the page was built from {maps}, not found at {path}"
    sweep = json.loads(path.read_text())
    assert sweep_digest(sweep) == digest, (
        f"{path} is not the sweep the page embeds (digest {sweep_digest(sweep)} vs "
        f"{digest}): re-execute chapter 7 with the current file"
    )
    return sweep, maps


# ---------------------------------------------------------------------------- the test
def test_sliders_switch_precomputed_runs_offline(site, browser):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    t0 = time.perf_counter()
    html = (site.html / PAGE).read_text(encoding="utf-8")
    if "bijepa-point" not in html:
        pytest.fail(
            f"{PAGE} has no precomputed panel: chapter 7 was executed without its "
            f"maps file. Make it with `{MAKE_MAPS}`, then execute chapter 7 again "
            "(python -m bijepa_nb.book --only 07)."
        )
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(site.url + PAGE)
    page.wait_for_selector(".bijepa-point", timeout=30_000)

    sweep, maps = _load_sweep_of_page(page)
    grid = sweep["grid"]
    modes, alphas, taus = grid["modes"], grid["alpha"], grid["ema_momentum"]
    points = {
        (p["mode"], f"{p['alpha']:g}", f"{p['ema_momentum']:g}"): p
        for p in sweep["points"]
    }
    note = page.locator(".bijepa-note").inner_text()
    assert "Precomputed runs" in note and f"{len(grid['seeds'])} seeds" in note
    assert page.locator("[data-view='live']").count() == 0, (
        "static page claims a live view"
    )

    menu = page.locator(".widget-dropdown select")
    sliders = {
        name: page.locator(".bijepa-slider-row", has_text=label)
        for name, label in SLIDERS.items()
    }
    assert menu.count() == 1 and all(s.count() == 1 for s in sliders.values())

    def readout(name: str) -> str:
        return _readout_value(sliders[name])

    # The initial view is the point the controls show (the chapter's parameters).
    state = [
        modes.index(menu.input_value()),
        [f"{a:g}" for a in alphas].index(readout("alpha")),
        [f"{t:g}" for t in taus].index(readout("tau")),
    ]

    def check(step: str) -> None:
        want = (modes[state[0]], f"{alphas[state[1]]:g}", f"{taus[state[2]]:g}")
        with contextlib.suppress(
            PlaywrightTimeout
        ):  # the asserts below say what is shown
            page.wait_for_function(
                """w => [...document.querySelectorAll('.bijepa-point')]
                    .some(e => e.offsetParent !== null && e.dataset.mode === w[0]
                          && e.dataset.alpha === w[1] && e.dataset.tau === w[2])""",
                arg=list(want),
                timeout=5_000,
            )
        shown = [tuple(p) for p in _visible_points(page)]
        assert shown == [want], (
            f"after {step}: visible leaves {shown}, expected [{want}]"
        )
        assert (menu.input_value(), readout("alpha"), readout("tau")) == want, step
        for axis, name in ((1, "alpha"), (2, "tau")):
            handle = sliders[name].locator(".noUi-handle")
            text = handle.get_attribute("aria-valuetext")
            assert text == f"{SYMBOLS[name]} = {want[axis]}", (step, text)
        assert _printed_numbers(page) == _expected_numbers(points[want]), (
            f"after {step}: printed numbers differ from {maps} at {want}"
        )

    def press(name: str, key: str, times: int = 1) -> None:
        axis, n = (1, len(alphas)) if name == "alpha" else (2, len(taus))
        handle = sliders[name].locator(".noUi-handle")
        for _ in range(times):
            handle.focus()
            page.keyboard.press(key)
            state[axis] = min(
                max(state[axis] + (1 if key == "ArrowRight" else -1), 0), n - 1
            )
            check(f"{key} on the {name} slider")

    def pick(mode: str) -> None:
        menu.select_option(mode)
        state[0] = modes.index(mode)
        check(f"mode {mode}")

    check("loading the page")
    press("alpha", "ArrowRight", 2)
    press("tau", "ArrowLeft", 2)
    for m in [*modes[::-1], modes[0]]:
        if m != modes[state[0]]:
            pick(m)
    press(
        "alpha", "ArrowLeft", len(alphas)
    )  # runs into alpha = grid minimum (and stays)
    press("tau", "ArrowRight", len(taus))  # runs into the largest tau
    pick(modes[-1])
    press("alpha", "ArrowRight", len(alphas))  # to alpha = grid maximum (classic at 1)
    press("tau", "ArrowLeft", 1)

    elsewhere = [
        u
        for u in requests
        if urlsplit(u).scheme not in ("data", "blob", "about")
        and urlsplit(u).hostname != "127.0.0.1"
    ]
    assert not elsewhere, f"the page requested from the network: {elsewhere}"
    assert requests, "no request recorded"
    errors = [e for e in errors if not any(k in e for k in KNOWN_PAGE_ERRORS)]
    assert not errors, f"page errors: {errors}"
    missing = sorted({p for p, s in site.requests if s >= 400})
    assert not missing, f"local files the page asked for but the build lacks: {missing}"
    page.close()
    print(
        f"\nslider test: {time.perf_counter() - t0:.1f} s, {len(requests)} requests, "
        f"page {len(html.encode())} bytes"
    )


# ------------------------------------------------------------------ a phone's screen
#: What the page's JS measures at each width: the text column (the article's content
#: box), and per control its box, its readout's box and text, whether that readout (or
#: anything in the row) can be typed into, and its handle's aria attributes.
_MEASURE = """() => {
    const box = e => { const r = e.getBoundingClientRect();
        return {left: r.left, right: r.right, width: r.width, height: r.height}; };
    const art = document.querySelector('article.bd-article');
    const cs = getComputedStyle(art), r = art.getBoundingClientRect();
    const column = {left: r.left + parseFloat(cs.paddingLeft),
                    right: r.right - parseFloat(cs.paddingRight)};
    const panel = document.querySelector('.bijepa-playground')
        || document.querySelector('.widget-dropdown').parentElement;
    const controls = [];
    for (const s of panel.querySelectorAll('.widget-slider, .widget-dropdown')) {
        const row = s.closest('.bijepa-slider-row') || s;
        const readouts = [...row.querySelectorAll('.bijepa-readout, .widget-readout')]
            .filter(e => e.getClientRects().length > 0);
        const handle = s.querySelector('.noUi-handle');
        controls.push({
            name: s.querySelector('.widget-label').textContent.trim(),
            row: box(row),
            // the description, the track or menu (the slider's own box has none on a
            // phone: display: contents)
            parts: [...s.children].filter(e => e.getClientRects().length > 0)
                .map(e => ({what: e.className, box: box(e)})),
            readouts: readouts.map(e => ({box: box(e), text: e.textContent.trim()})),
            editable: [...row.querySelectorAll('*')]
                .filter(e => e.isContentEditable && e.getClientRects().length > 0)
                .map(e => e.className),
            valuetext: handle ? handle.getAttribute('aria-valuetext') : null,
            label: handle ? handle.getAttribute('aria-label') : null,
        });
    }
    return {column, viewport: innerWidth, controls,
            scroll_width: document.documentElement.scrollWidth};
}"""


def _shown_point(page) -> tuple[str, str, str]:
    shown = [tuple(p) for p in _visible_points(page)]
    assert len(shown) == 1, f"visible leaves: {shown}"
    return shown[0]


def _wait_shown(page, axis: int, value: str) -> None:
    with contextlib.suppress(Exception):  # the caller's assert says what is shown
        page.wait_for_function(
            """w => [...document.querySelectorAll('.bijepa-point')].some(e =>
                e.offsetParent !== null && [e.dataset.mode, e.dataset.alpha,
                e.dataset.tau][w[0]] === w[1])""",
            arg=[axis, value],
            timeout=5_000,
        )


def _expect(page, row, axis: int, name: str, value: str, how: str) -> None:
    """After ``how`` on the ``name`` slider (row ``row``), its grid value ``value`` is
    the shown leaf's (``axis`` 1 alpha, 2 tau), the readout's and the aria-valuetext's."""
    _wait_shown(page, axis, value)
    shown = _shown_point(page)
    assert shown[axis] == value, f"{how} {name}: shown {shown}, expected {value}"
    assert _readout_value(row) == value, f"{how} {name}: readout"
    text = row.locator(".noUi-handle").get_attribute("aria-valuetext")
    assert text == f"{SYMBOLS[name]} = {value}", f"{how} {name}: valuetext {text!r}"


@pytest.mark.parametrize("width", [390, 1280])
def test_playground_fits_the_screen_and_is_accessible(site, browser, width):
    """At ``width`` px: every control row and readout lies inside the text column (358
    px at 390), the readouts cannot be typed into, the handle focused from the keyboard
    shows an outline, its aria-valuetext says the value ("α = 0.5"), and the keyboard
    and dragging still switch the shown grid point."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(site.url + PAGE)
    page.wait_for_selector(".bijepa-point", timeout=30_000)
    with contextlib.suppress(Exception):  # playground-aria.js has copied the labels
        page.wait_for_function(
            "() => [...document.querySelectorAll('.noUi-handle')]"
            ".every(h => (h.getAttribute('aria-valuetext') || '').includes(' = '))",
            timeout=5_000,
        )
    sweep, _ = _load_sweep_of_page(page)
    grid = {"alpha": sweep["grid"]["alpha"], "tau": sweep["grid"]["ema_momentum"]}
    got = page.evaluate(_MEASURE)
    col = got["column"]
    assert 0 <= col["left"] < col["right"] <= width, got["column"]
    report = []
    for c in got["controls"]:
        parts = [("row", c["row"])] + [(p["what"], p["box"]) for p in c["parts"]]
        parts += [(f"readout {r['text']!r}", r["box"]) for r in c["readouts"]]
        for what, b in parts:
            if b["left"] < col["left"] - 0.5 or b["right"] > col["right"] + 0.5:
                report.append(
                    f"{c['name']}: {what} spans {b['left']:.0f}-{b['right']:.0f} px "
                    f"({b['width']:.0f} wide), column {col['left']:.0f}-"
                    f"{col['right']:.0f} px"
                )
    assert not report, f"at {width} px, outside the column:\n" + "\n".join(report)
    assert got["scroll_width"] <= width, f"page scrolls sideways at {width} px"

    sliders = {
        n: page.locator(".bijepa-slider-row", has_text=t) for n, t in SLIDERS.items()
    }
    by_name = {c["name"]: c for c in got["controls"]}
    for name, label in SLIDERS.items():
        c = by_name[label]
        assert not c["editable"], f"{label}: editable readout {c['editable']}"
        assert len(c["readouts"]) == 1, f"{label}: readouts {c['readouts']}"
        text = c["readouts"][0]["text"]
        assert c["valuetext"] == text and text.startswith(f"{SYMBOLS[name]} = "), (
            f"{label}: aria-valuetext {c['valuetext']!r}, readout {text!r}"
        )
        assert c["label"] == label, f"{label}: aria-label {c['label']!r}"
        # Typing into the readout changes nothing.
        before = _shown_point(page)
        sliders[name].locator(".bijepa-readout").click()
        page.keyboard.type("0.9")
        page.keyboard.press("Enter")
        assert sliders[name].locator(".bijepa-readout").inner_text().strip() == text
        assert _shown_point(page) == before, f"typing into the {label} readout"

    # Keyboard focus: Tab from the mode menu reaches the alpha handle, then tau's; each
    # shows the focus ring.
    page.locator(".widget-dropdown select").focus()
    for name in SLIDERS:
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement,
            s = getComputedStyle(e); return {cls: e.className,
            row: e.closest('.bijepa-slider-row')?.textContent || '',
            visible: e.matches(':focus-visible'), style: s.outlineStyle,
            width: parseFloat(s.outlineWidth)}; }""")
        assert "noUi-handle" in focused["cls"] and SLIDERS[name] in focused["row"], (
            f"Tab did not reach the {name} handle: {focused}"
        )
        assert focused["visible"] and focused["style"] != "none", focused
        assert focused["width"] >= 2, focused

    # Arrow keys and dragging still switch the shown grid point, readout and valuetext.
    for axis, name in ((1, "alpha"), (2, "tau")):
        handle = sliders[name].locator(".noUi-handle")
        values = [f"{v:g}" for v in grid[name]]

        start = values.index(_shown_point(page)[axis])
        step = 1 if start < len(values) - 1 else -1
        handle.focus()
        page.keyboard.press("ArrowRight" if step == 1 else "ArrowLeft")
        _expect(
            page, sliders[name], axis, name, values[start + step], "an arrow key on"
        )
        track = sliders[name].locator(".noUi-base").bounding_box()
        for i, x in (
            (len(values) - 1, track["x"] + track["width"] + 20),
            (0, track["x"] - 20),
        ):
            h = handle.bounding_box()
            page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
            page.mouse.down()
            page.mouse.move(x, h["y"] + h["height"] / 2, steps=8)
            page.mouse.up()
            _expect(page, sliders[name], axis, name, values[i], "dragging")
    page.close()
