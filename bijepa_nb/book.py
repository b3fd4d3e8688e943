"""Execute the book's chapters with papermill, then render it: ``python -m bijepa_nb.book``.

    python -m bijepa_nb.book                 # every chapter at paper scale, in place, then build HTML
    python -m bijepa_nb.book --only 01 04    # some chapters
    python -m bijepa_nb.book --quick         # quick mode into _build/quick/ (committed files untouched)
    python -m bijepa_nb.book --no-html       # execute only

Per-chapter wall times are printed and written to ``_build/timings.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chapters(root: Path = ROOT) -> list[Path]:
    """Notebook chapters in _toc.yml order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


def execute(nb: Path, out: Path, quick: bool) -> float:
    import papermill as pm

    declared = pm.inspect_notebook(str(nb))
    if "quick" not in declared:
        raise SystemExit(f"{nb.name}: its parameters cell declares no 'quick' parameter")
    params = {"quick": True} if quick else {}
    t0 = time.perf_counter()
    env_quick = os.environ.pop("BIJEPA_QUICK", None)  # paper scale must not inherit quick mode
    try:
        os.environ["BIJEPA_BATCH"] = "1"  # chapters hide progress bars
        if quick:
            os.environ["BIJEPA_QUICK"] = "1"
        pm.execute_notebook(str(nb), str(out), parameters=params, cwd=str(nb.parent), kernel_name="python3", progress_bar=False)
    finally:
        os.environ.pop("BIJEPA_QUICK", None)
        os.environ.pop("BIJEPA_BATCH", None)
        if env_quick is not None:
            os.environ["BIJEPA_QUICK"] = env_quick
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="chapter number prefixes, e.g. 01 04")
    ap.add_argument("--quick", action="store_true", help="quick mode, outputs into _build/quick/")
    ap.add_argument("--no-html", action="store_true", help="skip jupyter-book build")
    args = ap.parse_args(argv)
    if os.environ.get("BIJEPA_DATA_DIR"):  # chapters run in book/: make a relative data folder absolute
        os.environ["BIJEPA_DATA_DIR"] = os.path.abspath(os.environ["BIJEPA_DATA_DIR"])
    nbs = [nb for nb in chapters() if not args.only or any(nb.name.startswith(p) for p in args.only)]
    timings: dict[str, float] = {}
    for nb in nbs:
        out = (ROOT / "_build" / "quick" / nb.name) if args.quick else nb
        out.parent.mkdir(parents=True, exist_ok=True)
        timings[nb.name] = round(execute(nb, out, args.quick), 1)
        print(f"{nb.name}: {timings[nb.name]:.1f} s ({'quick' if args.quick else 'paper scale'})", flush=True)
    print(f"total: {sum(timings.values()):.1f} s")
    (ROOT / "_build").mkdir(exist_ok=True)
    path = ROOT / "_build" / ("timings-quick.json" if args.quick else "timings.json")
    path.write_text(json.dumps(timings, indent=1))
    if not args.no_html and not args.quick:
        jb = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
        subprocess.run([jb, "build", str(ROOT), "-W", "-n"], check=True)


if __name__ == "__main__":
    main()
