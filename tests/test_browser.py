"""The built book renders offline in a real browser: figures, widgets, math.

Serves the HTML built by the session fixture ``book_build`` (tests/conftest.py) on
127.0.0.1 and loads pages in headless Debian chromium (``--dump-dom`` after scripts ran,
``--screenshot``). The browser may reach nothing but that server: every other host name
resolves to nothing, and chromium's own NetLog is checked for requests the page made
elsewhere. Needs ``apt-get install -y chromium``; skipped without it unless ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import types
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

PLAYGROUND = "book/07_playground.html"
SINE = "book/04_sine.html"
INSTALL = "apt-get update && apt-get install -y chromium"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    msg = f"headless chromium not found; install it with: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


# ``server`` (the built HTML on 127.0.0.1 with a request log) is in tests/conftest.py.


def _chromium(chromium: str, tmp: Path, url: str, *mode: str, budget_ms: int = 10000):
    """Run headless chromium once on `url`; return stdout, console lines, remote requests."""
    tmp.mkdir(parents=True, exist_ok=True)
    netlog = tmp / "netlog.json"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        "--disable-extensions",
        f"--user-data-dir={tmp / 'profile'}",
        # Offline on purpose: only the local server resolves.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}",
        "--enable-logging=stderr",
        "--v=0",
        f"--virtual-time-budget={budget_ms}",
        *mode,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp)
    assert proc.returncode == 0, (
        f"chromium exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    )
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return types.SimpleNamespace(
        stdout=proc.stdout, console=console, remote=_page_requests_elsewhere(netlog)
    )


def _page_requests_elsewhere(netlog: Path) -> list[str]:
    """URLs the page (not chromium's own services) requested from any host but 127.0.0.1."""
    if not netlog.exists():
        return []
    text = netlog.read_text(encoding="utf-8", errors="replace").rstrip().rstrip(",")
    if not text.endswith("}"):  # chromium may leave the event list unterminated
        text += "]}"
    log = json.loads(text)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for ev in log.get("events", []):
        p = ev.get("params") or {}
        if ev.get("type") != start or "url" not in p:
            continue
        # Requests made for the page carry its site in the isolation key; chromium's
        # background services (update checks, account lookups) carry none.
        if "127.0.0.1" not in p.get("network_isolation_key", ""):
            continue
        if urlsplit(p["url"]).hostname != "127.0.0.1":
            urls.append(p["url"])
    return urls


@pytest.fixture(scope="module")
def dom(chromium, server, tmp_path_factory):
    """Page name -> result of ``--dump-dom`` (one chromium run per page per session)."""
    cache = {}

    def get(page: str):
        if page not in cache:
            if not (server.html / page).is_file():
                pytest.fail(f"{page} was not built (is it in _toc.yml?)")
            tmp = tmp_path_factory.mktemp("chromium-dom")
            cache[page] = _chromium(chromium, tmp, server.url + page, "--dump-dom")
        return cache[page]

    return get


# ---------------------------------------------------------------------------- helpers
def _class_tokens(dom_html: str) -> set[str]:
    tokens = set()
    for cls in re.findall(r'\bclass="([^"]*)"', dom_html):
        tokens.update(cls.split())
    return tokens


def _imgs(dom_html: str) -> list[str]:
    return re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', dom_html)


def _output_images(page: str, result, server) -> list[str]:
    """Notebook-output images on the page: files under _images/ and inline data: images.

    Asserts that every _images/ file exists in the build, is not empty and was served.
    """
    found = []
    served = {path for path, status in server.requests if status == 200}
    for src in _imgs(result.stdout):
        if src.startswith("data:image/"):
            found.append(src[:40])
            continue
        url = urljoin(server.url + page, src)
        path = unquote(urlsplit(url).path)
        if "/_images/" not in path:
            continue  # theme images (Colab logo, ...)
        f = server.html / path.lstrip("/")
        assert f.is_file() and f.stat().st_size > 0, (
            f"{page}: figure {src} not in the build"
        )
        assert path in served, f"{page}: figure {src} was not loaded by the browser"
        found.append(src)
    return found


def _assert_clean_console_and_network(page: str, result, server):
    errors = [
        line
        for line in result.console
        if "Uncaught" in line or "MathJax" in line or "Error" in line
    ]
    assert not errors, f"{page}: console errors:\n" + "\n".join(errors)
    assert not result.remote, f"{page}: requested from the network: {result.remote}"
    missing = sorted({p for p, status in server.requests if status >= 400})
    assert not missing, (
        f"local files the browser asked for but the build lacks: {missing}"
    )


def _assert_mathjax_ok(page: str, result):
    dom_html = result.stdout
    assert "<mjx-merror" not in dom_html and "data-mjx-error" not in dom_html, (
        f"{page}: MathJax reported a TeX error"
    )
    # Pages with math must show it typeset (MathJax 3 CHTML output), i.e. MathJax loaded.
    if re.search(r'class="[^"]*\bmath\b', dom_html):
        assert "<mjx-container" in dom_html, f"{page}: math on the page was not typeset"


# ---------------------------------------------------------------------------- tests
def test_sine_page_renders_its_figures(dom, server):
    result = dom(SINE)
    assert _output_images(SINE, result, server), (
        f"{SINE}: no figure in the notebook outputs"
    )
    _assert_mathjax_ok(SINE, result)
    _assert_clean_console_and_network(SINE, result, server)


def test_playground_renders_widgets_figures_and_math(dom, server):
    result = dom(PLAYGROUND)
    classes = _class_tokens(result.stdout)
    # What @jupyter-widgets/html-manager 1.0.15 renders for an (Int|Float)Slider:
    # <div class="lm-Widget jupyter-widgets widget-inline-hbox widget-slider widget-hslider">
    for cls in (
        "jupyter-widgets",
        "widget-slider",
        "widget-hslider",
        "slider-container",
    ):
        assert cls in classes, (
            f"{PLAYGROUND}: no rendered widget element with class {cls!r}"
        )
    assert 'type="application/vnd.jupyter.widget-state+json"' in result.stdout
    assert _output_images(PLAYGROUND, result, server), (
        f"{PLAYGROUND}: no figure rendered"
    )
    _assert_mathjax_ok(PLAYGROUND, result)
    _assert_clean_console_and_network(PLAYGROUND, result, server)


def test_playground_screenshot_is_not_blank(chromium, server, tmp_path):
    png = tmp_path / "playground.png"
    _chromium(
        chromium,
        tmp_path,
        server.url + PLAYGROUND,
        f"--screenshot={png}",
        "--window-size=1280,1600",
        "--hide-scrollbars",
    )
    assert png.is_file(), "chromium wrote no screenshot"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG"
    # A blank 1280x1600 page compresses to ~9 KB; this page with text, sliders and a plot
    # gave ~95 KB.
    assert len(data) > 30_000, f"screenshot only {len(data)} bytes: page looks blank"
