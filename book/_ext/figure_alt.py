"""Sphinx extension: every figure's image gets its caption as alt text.

myst-nb writes a notebook figure (cell metadata ``mystnb: figure: caption``) as an image
whose file name is a hash; docutils' HTML writer then uses that path as the ``alt``
text, which a screen reader reads out. This sets the alt text of each image in a figure
that has none to the plain text of the figure's caption (an ``image: alt`` in the cell
metadata still wins). Loaded by ``_config.yml`` (``sphinx.local_extensions``);
tests/test_figures.py checks every rendered figure.
"""

from __future__ import annotations

import re

from docutils import nodes


def plain(text: str) -> str:
    """A caption as one line of plain text: no TeX dollars, backquotes or braces."""
    text = re.sub(r"[$`{}\\]", "", text)
    return " ".join(text.split())


def caption_alt(app, doctree, docname) -> None:
    for figure in doctree.findall(nodes.figure):
        captions = list(figure.findall(nodes.caption))
        if not captions:
            continue
        alt = plain(captions[0].astext())
        for image in figure.findall(nodes.image):
            if not image.get("alt"):
                image["alt"] = alt


def setup(app) -> dict:
    app.connect("doctree-resolved", caption_alt)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
