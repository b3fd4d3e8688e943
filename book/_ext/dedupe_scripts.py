"""Sphinx extension: each page loads each script once.

sphinx-thebe 0.3.1 registers its inline config (``const THEBE_JS_URL = ...``) with
``app.add_js_file(None, body=...)`` after the HTML builder started. Sphinx 7.4 keeps
that entry (file name ``None``) and adds the same script again from its registry when
writing (file name ``""``); the two do not compare equal, so every page declared the
``const`` twice and logged "Identifier 'THEBE_JS_URL' has already been declared"
(sphinx-togglebutton's inline script was doubled the same way). This drops repeats,
keeping the first of each. Loaded by ``_config.yml`` (``sphinx.local_extensions``).
"""

from __future__ import annotations

from typing import Any


def _key(js: Any) -> tuple:
    attrs = getattr(js, "attributes", {}) or {}
    return (
        getattr(js, "filename", js) or "",
        getattr(js, "priority", 500),
        tuple(sorted((k, str(v)) for k, v in attrs.items())),
    )


def dedupe_script_files(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = _key(js)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app) -> dict:
    # After the extensions that add per-page scripts (default priority 500).
    app.connect("html-page-context", dedupe_script_files, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
