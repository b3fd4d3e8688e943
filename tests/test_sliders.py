"""The playground's sliders work on the built static page, in a real browser, offline.

Playwright drives Debian's chromium (``/usr/bin/chromium``, ``--no-sandbox``; no
``playwright install``) on chapter 7 of the BUILT book, served on 127.0.0.1 (``server``
in tests/conftest.py, over the session build ``book_build``). It moves the alpha and
EMA-momentum sliders with the keyboard (ipywidgets 8 sliders are noUiSlider: focus
``.noUi-handle``, press ArrowRight/ArrowLeft) and changes the mode menu; after each move
exactly the leaf of the new grid point must be visible (``<div class="bijepa-point"
data-mode data-alpha data-tau>``, written by ``bijepa_nb.book.widgets.sweep_explorer``) and
its printed numbers must equal those computed here from the sweep JSON the chapter
loaded: the page's note names that file (``data-maps``, relative to book/) and its
content hash (``data-digest``). Every request the page makes must stay on 127.0.0.1.

``BIJEPA_BOOK_HTML=<folder>`` tests an already built HTML folder instead of building
the book (development: a scratch copy of the book whose chapter 7 was executed with
``-p maps_path <synthetic dev file>``). Skipped without chromium unless ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bijepa_nb.analysis.stats import geometric_mean_ci
from bijepa_nb.book.widgets import MAKE_MAPS, POINT_METRICS, sweep_digest

REPO = Path(__file__).resolve().parents[1]
PAGE = "book/07_playground.html"
INSTALL = "apt-get update && apt-get install -y chromium"
HTML_ENV = "BIJEPA_BOOK_HTML"
# Missing files (console "Failed to load resource") are checked in the server's log
# instead, which names them. Every other console error fails the test.
KNOWN_PAGE_ERRORS = ("Failed to load resource",)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def chromium_path() -> str:
    for path in (
        "/usr/bin/chromium",
        shutil.which("chromium") or "",
        shutil.which("chromium-browser") or "",
    ):
        if path and os.path.exists(path):
            return path
    msg = f"chromium not found; install it with: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


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


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        yield b
        b.close()


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
        name: page.locator(".widget-slider", has_text=label)
        for name, label in (("alpha", "alpha (1 = classic)"), ("tau", "EMA momentum τ"))
    }
    assert menu.count() == 1 and all(s.count() == 1 for s in sliders.values())

    def readout(name: str) -> str:
        return sliders[name].locator(".widget-readout").inner_text().strip()

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
