"""Readers can navigate the built book at phone, tablet and laptop widths, and no page
logs a JavaScript error or asks for a file the build lacks.

Playwright drives Debian's chromium (``/usr/bin/chromium``, ``--no-sandbox``; no
``playwright install``) on the BUILT book, served on 127.0.0.1 (``server`` in
tests/conftest.py, over the session build ``book_build``):

- the menu button (``.primary-toggle``) opens the chapter list: below 992 px as a
  dialog, from 992 px (where the list shows beside the text) by expanding it again
  after a first click collapsed it; a chapter link in it is then clickable and
  clicking it opens that chapter;
- the contents button (``.secondary-toggle``) opens the page's table of contents on a
  chapter page (from 1,200 px the themes show it beside the text, without a button);
- every page loads with no console error, no uncaught exception, no failed or 404
  request and no request beyond 127.0.0.1;
- in dark mode, inline code in widget outputs (chapter 7's file label) stays legible.

With sphinx-book-theme 1.3.0 + pydata-sphinx-theme 0.17.1 alone both buttons did
nothing (pydata-sphinx-theme #2451); ``book/_static/sidebar-toggles.js`` fixes that.
Skipped without chromium unless ``CI`` is set.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

CHAPTER = "book/04_sine.html"
# A chapter the list links to (not the page under test), found by its file name.
TARGET = "05_lorenz.html"
WIDE = 992  # from here the themes show the chapter list beside the text
TOC_BESIDE = 1200  # ... and the page contents too
TIMEOUT_MS = 5000


# ---------------------------------------------------------------------------- fixtures
def _open(browser, url: str, width: int, **context):
    ctx = browser.new_context(viewport={"width": width, "height": 900}, **context)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_load_state("load")
    return ctx, page


def _one_visible(page, selector: str, width: int):
    """The one visible element matching ``selector`` (the themes render two buttons of
    each kind, one hidden)."""
    visible = page.locator(f"{selector}:visible")
    assert visible.count() == 1, (
        f"{width} px: {visible.count()} visible {selector} buttons, expected 1"
    )
    return visible.first


def _chapter_link(page):
    """The link to TARGET in the chapter list, wherever the list is (sidebar or dialog)."""
    return page.locator(f'nav.bd-docs-nav a.reference[href$="{TARGET}"]').first


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("page_name", ["book/intro.html", CHAPTER])
@pytest.mark.parametrize("width", [390, 768, 1280])
def test_menu_button_opens_the_chapter_list(server, browser, width, page_name):
    ctx, page = _open(browser, server.url + page_name, width)
    try:
        menu = _one_visible(page, ".primary-toggle", width)
        link = _chapter_link(page)
        if width >= WIDE:
            # The list shows beside the text; the button collapses it, then opens it.
            assert link.is_visible(), f"{width} px: chapter list not shown at load"
            menu.click()
            try:
                link.wait_for(state="hidden")
            except Exception as exc:  # playwright TimeoutError
                raise AssertionError(
                    f"{width} px: the menu button did not collapse the chapter list"
                ) from exc
        else:
            assert not link.is_visible(), f"{width} px: chapter list open at load"
        menu.click()
        try:
            link.wait_for(state="visible")
        except Exception as exc:  # playwright TimeoutError
            raise AssertionError(
                f"{page_name} at {width} px: the menu button did not open the chapter "
                f"list ({TARGET} link still hidden)"
            ) from exc
        # Playwright's click waits until the link is visible, stable and not covered.
        link.click()
        page.wait_for_url(re.compile(re.escape(TARGET) + r"$"))
        assert "Lorenz" in page.locator("h1").first.inner_text()
    finally:
        ctx.close()


@pytest.mark.parametrize("width", [390, 768, 1024, 1280])
def test_contents_button_opens_the_page_contents(server, browser, width):
    ctx, page = _open(browser, server.url + CHAPTER, width)
    try:
        toc_link = page.locator("#pst-page-toc-nav a.nav-link").first
        assert toc_link.count(), f"{CHAPTER}: no table of contents on the page"
        if width >= TOC_BESIDE:
            # The contents sit beside the text; the theme hides the button here.
            assert page.locator(".secondary-toggle:visible").count() == 0
            assert toc_link.is_visible(), f"{width} px: page contents not shown"
        else:
            assert not toc_link.is_visible(), f"{width} px: page contents open at load"
            _one_visible(page, ".secondary-toggle", width).click()
            try:
                toc_link.wait_for(state="visible")
            except Exception as exc:  # playwright TimeoutError
                raise AssertionError(
                    f"{width} px: the contents button did not open the page contents"
                ) from exc
        anchor = toc_link.get_attribute("href")
        assert anchor and anchor.startswith("#"), anchor
        toc_link.click()
        page.wait_for_url(re.compile(re.escape(anchor) + r"$"))
    finally:
        ctx.close()


def _pages(html) -> list[str]:
    pages = sorted(p.relative_to(html).as_posix() for p in html.glob("book/*.html"))
    return ["index.html", *pages, "search.html", "genindex.html"]


class _Quiet:
    """Requests a page has started and not finished, from Playwright's own events.

    Playwright's ``networkidle`` was seen to wait out its 20 s timeout with nothing in
    flight (two of 36 page loads here, on different pages each run), so the tests
    keep their own count instead.
    """

    def __init__(self, page) -> None:
        self.open: set = set()
        page.on("request", lambda r: self.open.add(r))
        page.on("requestfinished", lambda r: self.open.discard(r))
        page.on("requestfailed", lambda r: self.open.discard(r))

    def wait(self, page, quiet_ms: int = 500, timeout_ms: int = 20000) -> None:
        """Return once no request has been open for ``quiet_ms``; fail naming the
        open requests after ``timeout_ms``."""
        waited = quiet = 0
        while quiet < quiet_ms:
            page.wait_for_timeout(50)
            waited += 50
            quiet = 0 if self.open else quiet + 50
            if waited > timeout_ms:
                urls = sorted(r.url for r in self.open)
                raise AssertionError(f"still loading after {timeout_ms} ms: {urls}")


def _settle(page, quiet: _Quiet) -> None:
    """Wait until the page has stopped loading anything, MathJax's fonts included.

    MathJax typesets after the load event and asks for its web fonts only when it
    meets a glyph, which can be after the network has been quiet for 500 ms. Leaving
    the page then aborts the font request (``net::ERR_ABORTED``), which reads as a
    failed request though nothing is missing. So: loaded, network quiet, MathJax's
    typesetting promise settled, the math laid out, every font it asked for loaded,
    and the network quiet again.
    """
    page.wait_for_load_state("load")
    quiet.wait(page)
    page.evaluate(
        """async () => {
            const mj = window.MathJax;
            if (mj && mj.startup && mj.startup.promise) await mj.startup.promise;
            // Two frames: the typeset math is laid out, so its fonts are asked for.
            const frame = () => new Promise((r) => requestAnimationFrame(r));
            await frame();
            await frame();
            await document.fonts.ready;
        }"""
    )
    quiet.wait(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_loads_without_errors(server, browser, scheme):
    pages = _pages(server.html)
    assert len(pages) > 10, f"only {pages}: is the book built?"
    ctx = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme=scheme
    )
    problems: list[str] = []
    try:
        page = ctx.new_page()
        page.set_default_timeout(4 * TIMEOUT_MS)
        quiet = _Quiet(page)
        where = {"page": ""}

        def note(what: str) -> None:
            problems.append(f"{where['page']}: {what}")

        page.on("pageerror", lambda e: note(f"uncaught {e}"))
        page.on(
            "console",
            lambda m: note(f"console error: {m.text}") if m.type == "error" else None,
        )
        page.on(
            "requestfailed", lambda r: note(f"request failed: {r.url} ({r.failure})")
        )
        page.on(
            "response",
            lambda r: note(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        page.on(
            "request",
            lambda r: (
                note(f"request beyond 127.0.0.1: {r.url}")
                if urlsplit(r.url).scheme in ("http", "https")
                and urlsplit(r.url).hostname != "127.0.0.1"
                else None
            ),
        )
        for name in pages:
            where["page"] = name
            page.goto(server.url + name)
            _settle(page, quiet)
    finally:
        ctx.close()
    assert not problems, f"{scheme} mode:\n" + "\n".join(problems)
    missing = sorted({p for p, status in server.requests if status >= 400})
    assert not missing, f"the server answered >= 400 for: {missing}"


def _luminance(rgb: tuple[float, float, float]) -> float:
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _rgb(css: str) -> tuple[float, float, float]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", css)[:3])


# Text colour and the nearest opaque background behind each inline code element.
CODE_COLOURS = """() => Array.from(document.querySelectorAll('.widget-subarea code'))
  .map(e => { let b = e.parentElement, bg = null;
    while (b && !bg) { const c = getComputedStyle(b).backgroundColor;
      if (c.startsWith('rgb(')) bg = c; b = b.parentElement; }
    return [e.textContent, getComputedStyle(e).color, bg]; })"""


def test_widget_code_is_legible_in_dark_mode(server, browser):
    ctx, page = _open(
        browser, server.url + "book/07_playground.html", 1280, color_scheme="dark"
    )
    try:
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        page.locator(".widget-subarea code").first.wait_for(state="visible")
        found = page.evaluate(CODE_COLOURS)
    finally:
        ctx.close()
    assert found, "no inline code in the playground's widget output"
    for text, colour, background in found:
        hi, lo = sorted(
            (_luminance(_rgb(colour)), _luminance(_rgb(background))), reverse=True
        )
        ratio = (hi + 0.05) / (lo + 0.05)
        assert ratio >= 4.5, (
            f"dark mode: {text!r} is {colour} on {background}, contrast {ratio:.1f}:1 "
            "(WCAG AA asks 4.5:1)"
        )
