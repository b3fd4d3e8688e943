#!/usr/bin/env bash
# Re-vendor the JavaScript the book loads (MathJax 3, ipywidgets html-manager) into
# book/_static/vendored/ from the npm registry, so the built HTML needs no CDN.
# Usage: tools/vendor_js.sh [mathjax-version] [html-manager-version]
# See book/_static/VENDORED.md for what is copied and why.
set -euo pipefail
MATHJAX_VERSION="${1:-3.2.2}"
HTML_MANAGER_VERSION="${2:-1.0.15}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/book/_static/vendored"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cd "$TMP"
npm pack --silent "mathjax@$MATHJAX_VERSION" "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" >/dev/null
mkdir mj hm
tar xzf "mathjax-$MATHJAX_VERSION.tgz" -C mj
tar xzf "jupyter-widgets-html-manager-$HTML_MANAGER_VERSION.tgz" -C hm

# MathJax: the combined TeX+MathML -> CommonHTML component and the woff-v2 fonts it loads
# from [mathjax]/output/chtml/fonts/woff-v2 (relative to the script's own URL).
rm -rf "$DEST/mathjax"
mkdir -p "$DEST/mathjax/output/chtml/fonts/woff-v2"
cp mj/package/es5/tex-mml-chtml.js mj/package/LICENSE "$DEST/mathjax/"
cp mj/package/es5/output/chtml/fonts/woff-v2/*.woff "$DEST/mathjax/output/chtml/fonts/woff-v2/"

# html-manager: the standalone (non-AMD) embed bundle and the Font Awesome 5 fonts its
# bundled CSS loads from the script's own folder (webpack publicPath). Browsers pick
# woff2 (woff as fallback); the .eot/.ttf/.svg variants are for legacy browsers only.
rm -rf "$DEST/html-manager"
mkdir -p "$DEST/html-manager"
cp hm/package/dist/embed.js hm/package/dist/embed.js.LICENSE.txt "$DEST/html-manager/"
cp hm/package/dist/*.woff2 hm/package/dist/*.woff "$DEST/html-manager/"
cp hm/package/LICENSE "$DEST/html-manager/" 2>/dev/null || true

du -sh "$DEST"/*
