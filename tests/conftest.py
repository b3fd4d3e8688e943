import contextlib
import functools
import http.server
import os
import shutil
import threading
import types
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The offline data folder named by the setting BIJEPA_DATA_DIR (CI: ../shared/data).

    Without the setting the test is skipped locally and fails in CI (CI must test real digits).
    """
    value = os.environ.get("BIJEPA_DATA_DIR")
    if not value or not Path(value).exists():
        msg = f"offline data folder not found: set BIJEPA_DATA_DIR (now {value!r}), e.g. to ../shared/data"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return Path(value)


@pytest.fixture(scope="session")
def book_build(tmp_path_factory):
    """Build the Jupyter Book once per session, as CI does: offline, warnings are errors.

    Returns a namespace with ``returncode``, ``output`` (stdout+stderr), ``html`` (the built
    HTML folder) and ``repo``. Tests that need the pages call ``book_build.require_html()``,
    which fails with the end of the build log if the build failed.
    """
    import subprocess
    import sys
    import types

    out = tmp_path_factory.mktemp("book")
    # Same interpreter as pytest (the `jupyter-book` script may belong to another one).
    cmd = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(REPO),
        "-W",
        "-n",
        "--path-output",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    build = types.SimpleNamespace(
        returncode=proc.returncode,
        output=proc.stdout + proc.stderr,
        html=out / "_build" / "html",
        repo=REPO,
    )

    def require_html() -> Path:
        if build.returncode != 0:
            pytest.fail(
                f"jupyter-book build failed (exit {build.returncode}):\n"
                f"{build.output[-6000:]}"
            )
        return build.html

    build.require_html = require_html
    return build


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):  # record instead of printing
        pass

    def log_request(self, code="-", size="-"):
        self.server.requests.append((urlsplit(self.path).path, int(code)))


@contextlib.contextmanager
def serve_html(directory: Path):
    """Serve ``directory`` on http://127.0.0.1:<free port>/; yields a namespace with ``url``,
    ``html`` (the folder) and ``requests`` (a log of (path, status) the server answered)."""
    handler = functools.partial(_Handler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield types.SimpleNamespace(
            url=f"http://127.0.0.1:{httpd.server_address[1]}/",
            html=Path(directory),
            requests=httpd.requests,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def html_server():
    """``serve_html`` as a fixture: ``with html_server(folder) as srv: ...`` (any folder)."""
    return serve_html


@pytest.fixture(scope="module")
def server(book_build):
    """The built HTML of ``book_build`` on http://127.0.0.1:<free port>/, with a log of
    (path, status); one server per test module, so each module's log is its own."""
    with serve_html(book_build.require_html()) as srv:
        yield srv


CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium (Playwright's own browsers are never downloaded): missing, it is
    a failure in CI and a skip elsewhere, with the command that installs it."""
    for path in (
        "/usr/bin/chromium",
        shutil.which("chromium") or "",
        shutil.which("chromium-browser") or "",
    ):
        if path and os.path.exists(path):
            return path
    msg = f"chromium not found; install it with: {CHROMIUM_INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser(chromium_path):
    """One headless chromium per test module, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        yield b
        b.close()
