"""The book builds offline with warnings as errors, and its pages need no network.

The build itself is the session fixture ``book_build`` (tests/conftest.py): it runs
``jupyter-book build <repo> -W -n --path-output <tmp>`` once per pytest session.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

MATHJAX = "_static/vendored/mathjax/tex-mml-chtml.js"
EMBED_JS = "_static/vendored/html-manager/embed.js"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


# ---------------------------------------------------------------------------- helpers
def toc_files(toc: dict) -> list[str]:
    """Every `file:` (and the root) of a jupyter-book _toc.yml, in order."""
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key))

    for key in ("chapters", "sections", "parts"):
        walk(toc.get(key))
    return files


def is_remote(url: str | None) -> bool:
    """True for http(s):// and protocol-relative //host URLs."""
    if not url:
        return False
    url = url.strip().lower()
    return url.startswith(("http://", "https://", "//"))


class _Assets(HTMLParser):
    """Collects the resources a page loads: scripts, stylesheets/fonts, inline CSS."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict] = []  # attrs of every <script>
        self.links: list[dict] = []  # attrs of <link> that load something
        self.styles: list[str] = []  # inline <style> bodies
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "script":
            self.scripts.append(a)
        elif tag == "link":
            rel = a.get("rel", "").lower().split()
            loads = {"stylesheet", "preload", "modulepreload", "prefetch"}
            if loads & set(rel) or a.get("as") in ("font", "style", "script"):
                self.links.append(a)
        elif tag == "style":
            self._in_style = True
            self.styles.append("")

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles[-1] += data


_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]*)", re.I)
_CSS_IMPORT = re.compile(r"@import\s+(?:url\(\s*)?(['\"]?)([^'\");\s]*)", re.I)


def remote_css_refs(css: str) -> list[str]:
    """url(...) and @import targets in CSS that point at the network."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # commented-out @imports are fine
    refs = [m.group(2) for m in _CSS_URL.finditer(css)]
    refs += [m.group(2) for m in _CSS_IMPORT.finditer(css)]
    return [r for r in refs if is_remote(r)]


def page_src(page: Path, html: Path, url: str) -> str:
    """A page-relative URL as a path relative to the build root (query dropped).

    Remote URLs come back unchanged."""
    if is_remote(url):
        return url
    path = urlsplit(url).path
    rel = (page.parent / path).resolve().relative_to(html.resolve())
    return PurePosixPath(rel).as_posix()


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def html(book_build) -> Path:
    return book_build.require_html()


@pytest.fixture(scope="module")
def pages(html) -> dict[Path, _Assets]:
    parsed = {}
    for page in sorted(html.rglob("*.html")):
        p = _Assets()
        p.feed(page.read_text(encoding="utf-8"))
        parsed[page] = p
    assert parsed, f"no HTML pages under {html}"
    return parsed


# ---------------------------------------------------------------------------- tests
def test_build_succeeds_offline_with_warnings_as_errors(book_build):
    assert book_build.returncode == 0, book_build.output[-6000:]


def test_every_toc_page_is_built(book_build, html):
    toc = yaml.safe_load((book_build.repo / "_toc.yml").read_text(encoding="utf-8"))
    files = toc_files(toc)
    assert files, "no pages in _toc.yml"
    missing = []
    for name in files:
        stem = re.sub(r"\.(md|ipynb|rst)$", "", name)
        if not (html / f"{stem}.html").is_file():
            missing.append(f"{stem}.html")
    assert not missing, f"pages listed in _toc.yml but not built: {missing}"


def test_no_page_loads_scripts_styles_or_fonts_from_the_network(pages, html):
    bad = []
    for page, p in pages.items():
        name = page.relative_to(html).as_posix()
        for s in p.scripts:
            if is_remote(s.get("src")):
                bad.append(f"{name}: <script src={s['src']}>")
        for link in p.links:
            if is_remote(link.get("href")):
                bad.append(f"{name}: <link rel={link.get('rel')} href={link['href']}>")
        for css in p.styles:
            bad += [f"{name}: <style> {r}" for r in remote_css_refs(css)]
    assert not bad, "network assets in built pages:\n" + "\n".join(bad)


def test_no_css_file_imports_from_the_network(html):
    css_files = sorted((html / "_static").rglob("*.css"))
    assert css_files, "no CSS in _static"
    bad = []
    for css in css_files:
        refs = remote_css_refs(css.read_text(encoding="utf-8", errors="replace"))
        bad += [f"{css.relative_to(html).as_posix()}: {r}" for r in refs]
    assert not bad, "CSS loading from the network:\n" + "\n".join(bad)


def test_mathjax_is_the_vendored_copy(pages, html):
    assert (html / MATHJAX).is_file()
    fonts = html / "_static/vendored/mathjax/output/chtml/fonts/woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file(), (
        "MathJax CHTML fonts not vendored"
    )
    loaded_on = []
    for page, p in pages.items():
        for s in p.scripts:
            src = s.get("src", "")
            name = urlsplit(src).path.rsplit("/", 1)[-1].lower()
            if (
                re.match(r"(tex|mml)-.*\.js$|mathjax(\.min)?\.js$", name)
                or "mathjax@" in src
            ):
                assert page_src(page, html, src) == MATHJAX, (
                    f"{page.name} loads MathJax from {src}"
                )
                loaded_on.append(page.name)
    # intro.md has math, so at least that page must load it.
    assert loaded_on, "no built page loads MathJax"


def test_widget_pages_load_the_vendored_embed_js(pages, html):
    embed = html / EMBED_JS
    assert embed.is_file(), f"{EMBED_JS} missing from the build"
    # The fonts embed.js's bundled CSS loads from its own folder (webpack publicPath):
    # browsers take the woff2 variant; all of them must be vendored next to it.
    woff2 = set(
        re.findall(r'"([0-9a-f]{20}\.woff2)"', embed.read_text(encoding="utf-8"))
    )
    assert woff2, "no woff2 fonts referenced by embed.js?"
    missing = [f for f in woff2 if not (embed.parent / f).is_file()]
    assert not missing, f"fonts embed.js loads but not vendored: {missing}"

    for page, p in pages.items():
        srcs = [s.get("src", "") for s in p.scripts]
        for s in p.scripts:
            assert "data-jupyter-widgets-cdn" not in s, (
                f"{page.name}: widget CDN attribute"
            )
            src = s.get("src", "").lower()
            assert "require.js" not in src and "require.min.js" not in src, page.name
            assert "embed-amd" not in src, page.name
        has_state = any(s.get("type") == WIDGET_STATE for s in p.scripts)
        local_embed = [s for s in srcs if s and page_src(page, html, s) == EMBED_JS]
        if has_state:
            assert local_embed, (
                f"{page.name} has widget state but does not load {EMBED_JS}"
            )
