"""Execute the book's chapters with papermill, then render it: ``python -m bijepa_nb.book``.

    python -m bijepa_nb.book               # every chapter at paper scale, then build HTML
    python -m bijepa_nb.book --only 01 04  # some chapters (unknown prefixes are an error)
    python -m bijepa_nb.book --quick       # quick mode into _build/quick/
    python -m bijepa_nb.book --no-html     # execute only
    python -m bijepa_nb.book --cell-timeout 600  # fail a cell after 600 s (default 1800)
    python -m bijepa_nb.book --ratios      # characters of prose vs code per chapter
    python -m bijepa_nb.book --ledger      # rewrite the claim ledger from book/results
    python -m bijepa_nb.book --set-repository https://github.com/OWNER/NAME [--branch B]
                                           # point _config.yml and every chapter's
                                           # Colab link, install cell and downloads at
                                           # a fork (sources only; bijepa_nb.book.repository)

Each chapter executes into ``_build/running/`` and replaces its notebook (``book/NN_*.ipynb``,
or ``_build/quick/NN_*.ipynb`` in quick mode) by an atomic rename only when every cell ran.
If a chapter raises, or the run is interrupted (Ctrl-C / SIGINT, SIGTERM), the notebook it
would have replaced is left byte for byte as it was, the partly executed copy is kept in
``_build/failed/`` (its path is printed), nothing further runs and the command exits
non-zero: 1 for a chapter error, 128 + the signal number for an interrupt (130 for Ctrl-C).
A cell that runs longer than ``--cell-timeout`` seconds (default ``CELL_TIMEOUT_S``) is a
chapter error, so a hung cell fails the run instead of holding it forever.

The output is one line per chapter with its wall time, then the total (and one line for
the HTML build, whose own output goes to ``_build/html-build.log``); the kernels' own
chatter is dropped (the TCP-transport warning, and no SIGINT at shutdown that would make
an idle kernel log "KeyboardInterrupt caught"); anything else a kernel writes to stderr
is passed on. Per-chapter wall times are also written to ``_build/timings.json``
(``timings-quick.json`` in quick mode), also for the chapters that finished before a failure.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ..analysis.ledger import write_pages as write_ledger
from .repository import set_repository

ROOT = Path(__file__).resolve().parents[2]

#: The one kernel log line the runner drops: ipykernel (>= 7) logs it at every kernel start
#: when the kernel manager provisions no CurveZMQ keys (papermill's never does). The kernel
#: listens on localhost only; every other line the kernel writes to stderr is passed on.
KERNEL_TCP_WARNING = "Kernel is running over TCP without encryption"

#: libzmq's abort message when a kernel's sockets are torn down while it is being shut
#: down ("Assertion failed: pfd.revents & POLLIN (src/signaler.cpp:238)"): seen once in
#: four test-suite runs, after every cell had run and the runner had exited 0. A kernel
#: that died inside a cell fails its chapter anyway, so the line tells a reader nothing.
KERNEL_ZMQ_TEARDOWN = "Assertion failed: pfd.revents & POLLIN"

#: Kernel stderr lines the runner drops (every other line is passed on).
KERNEL_CHATTER = (KERNEL_TCP_WARNING, KERNEL_ZMQ_TEARDOWN)

#: Set by SIGINT/SIGTERM while the runner runs: the kernel is then killed at once instead of
#: being asked to shut down in the middle of a cell (which prints a ZMQError traceback).
_INTERRUPTED = threading.Event()

#: Seconds one cell may run before its chapter fails (papermill's ``execution_timeout``).
#: The slowest cell at paper scale took 540 s (06_mnist, MNIST training, 2-core CPU).
CELL_TIMEOUT_S = 1800


def chapters(root: Path = ROOT) -> list[Path]:
    """Notebook chapters listed in ``root/_toc.yml``, in its order (missing files skipped).

    A page with ``sections:`` comes after its sections: chapter 9's first page sums up
    the verdicts its section pages save, so it runs once they have run.
    """
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k != "file":
                    walk(v)
            if "file" in node:
                files.append(node["file"])
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


#: Tags of code cells that the rendered page does not show.
HIDDEN_TAGS = frozenset({"remove-cell", "remove-input"})


def prose_and_code(nb: Path) -> tuple[int, int, int]:
    """Characters of ``nb``'s markdown cells, of its code cells, and of the code cells the
    page hides (tagged ``remove-cell`` or ``remove-input``; counted in the code too)."""
    prose = code = hidden = 0
    for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
        src = cell.get("source", "")
        n = len("".join(src) if isinstance(src, list) else src)
        if cell["cell_type"] == "markdown":
            prose += n
        elif cell["cell_type"] == "code":
            code += n
            hidden += n * bool(HIDDEN_TAGS & set(cell["metadata"].get("tags", [])))
    return prose, code, hidden


def ratios_table(nbs: list[Path]) -> str:
    """One line per chapter: prose, code (and hidden code) characters, prose / code."""
    rows = ["chapter               prose    code  (hidden)  prose/code"]
    for nb in nbs:
        prose, code, hidden = prose_and_code(nb)
        ratio = prose / code if code else float("inf")
        rows.append(
            f"{nb.stem[:20]:20s} {prose:6d}  {code:6d}  ({hidden:6d})  {ratio:10.2f}"
        )
    return "\n".join(rows)


def forward_kernel_stderr(stream: IO[bytes], sink: IO[str]) -> None:
    """Copy a kernel's stderr ``stream`` to ``sink`` line by line, minus KERNEL_CHATTER.

    Runs until end of file (the kernel exited), then closes ``stream``.
    """
    try:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if not any(known in line for known in KERNEL_CHATTER):
                sink.write(line)
                sink.flush()
    except (OSError, ValueError):  # sink closed at interpreter exit
        pass
    finally:
        stream.close()


def _quiet_kernel_manager() -> type:
    """A jupyter_client AsyncKernelManager whose kernel's stderr goes through a filter.

    The kernel's stderr becomes a pipe that a daemon thread forwards to ``sys.stderr`` with
    :func:`forward_kernel_stderr`. With a jupyter_client that lacks the hook, the kernel
    simply inherits stderr as before. After an interrupt the kernel is killed, not asked.
    """
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw["stderr"] = subprocess.PIPE
            await super()._async_launch_kernel(kernel_cmd, **kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None and process.stderr is not None:
                threading.Thread(
                    target=forward_kernel_stderr,
                    args=(process.stderr, sys.stderr),
                    name="kernel-stderr",
                    daemon=True,
                ).start()

        async def shutdown_kernel(
            self, now: bool = False, restart: bool = False
        ) -> None:
            now = now or _INTERRUPTED.is_set()
            self._shutting_down = True
            await super().shutdown_kernel(now=now, restart=restart)

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts the kernel before every shutdown, in case a cell
            # still runs. Here none does (papermill shuts down after the last cell or an
            # error; an interrupted run kills the kernel), and a SIGINT that lands while
            # the idle kernel handles a message makes it log "KeyboardInterrupt caught in
            # kernel." The shutdown request alone stops it (killed if it does not).
            if getattr(self, "_shutting_down", False):
                return
            await super()._async_interrupt_kernel()

        interrupt_kernel = _async_interrupt_kernel

    return QuietKernelManager


def execute(
    nb: Path, out: Path, quick: bool, cell_timeout: int = CELL_TIMEOUT_S
) -> float:
    """Run notebook ``nb`` with papermill, writing the executed copy to ``out``; seconds taken.

    ``out`` is written as the cells run: pass a scratch path (see :func:`run_chapter`).
    A cell running longer than ``cell_timeout`` seconds raises ``CellTimeoutError``.
    """
    import papermill as pm

    declared = pm.inspect_notebook(str(nb))
    if "quick" not in declared:
        raise SystemExit(
            f"{nb.name}: its parameters cell declares no 'quick' parameter"
        )
    params = {"quick": True} if quick else {}
    t0 = time.perf_counter()
    # paper scale must not inherit quick mode from the caller's environment
    env_quick = os.environ.pop("BIJEPA_QUICK", None)
    try:
        os.environ["BIJEPA_BATCH"] = "1"  # chapters hide progress bars
        if quick:
            os.environ["BIJEPA_QUICK"] = "1"
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters=params,
            cwd=str(nb.parent),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=cell_timeout,
            kernel_manager_class=_quiet_kernel_manager(),
        )
    finally:
        os.environ.pop("BIJEPA_QUICK", None)
        os.environ.pop("BIJEPA_BATCH", None)
        if env_quick is not None:
            os.environ["BIJEPA_QUICK"] = env_quick
    return time.perf_counter() - t0


def _replace(src: Path, dest: Path) -> None:
    """Move ``src`` onto ``dest`` atomically (``os.replace``), also across file systems."""
    try:
        os.replace(src, dest)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dest.with_name(
            f".{dest.name}.{os.getpid()}.tmp"
        )  # same folder: atomic rename
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        src.unlink()


class ChapterFailed(Exception):
    """A chapter did not finish; ``dest`` is untouched, ``kept`` holds the partial copy."""

    def __init__(self, nb: Path, dest: Path, kept: Path | None, cause: BaseException):
        super().__init__(f"{nb.name} failed: {_describe(cause)}")
        self.nb, self.dest, self.kept, self.cause = nb, dest, kept, cause


def _describe(exc: BaseException) -> str:
    """One line for an exception; for a failed cell: its number, error name and value."""
    ename = getattr(exc, "ename", None)
    if ename is not None:  # papermill.PapermillExecutionError
        where = f"cell {exc.exec_count}: " if getattr(exc, "exec_count", None) else ""
        return f"{where}{ename}: {getattr(exc, 'evalue', '')}".rstrip()
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def run_chapter(
    nb: Path,
    dest: Path,
    quick: bool,
    build: Path,
    cell_timeout: int = CELL_TIMEOUT_S,
) -> float:
    """Execute ``nb`` into ``build/running/``; on success rename the result onto ``dest``.

    On any failure, KeyboardInterrupt included, ``dest`` is not touched: the partial copy is
    moved to ``build/failed/<name>`` and :class:`ChapterFailed` is raised from the cause.
    Returns the execution time in seconds.
    """
    running = build / "running" / f"{nb.stem}.{os.getpid()}.ipynb"
    running.parent.mkdir(parents=True, exist_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        seconds = execute(nb, running, quick, cell_timeout)
        _replace(running, dest)
        return seconds
    except BaseException as cause:
        kept: Path | None = None
        if running.exists():
            kept = build / "failed" / nb.name
            kept.parent.mkdir(parents=True, exist_ok=True)
            _replace(running, kept)
        raise ChapterFailed(nb, dest, kept, cause) from cause


@contextmanager
def _signals_raise_keyboard_interrupt(received: list[int]) -> Iterator[None]:
    """While active, SIGINT and SIGTERM append their number to ``received`` and raise
    KeyboardInterrupt in the main thread, so a chapter's cleanup runs for both."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    sigs = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {s: signal.signal(s, handler) for s in sigs}
    _INTERRUPTED.clear()
    try:
        yield
    finally:
        _INTERRUPTED.clear()
        for s, h in previous.items():
            signal.signal(s, h)


def _show(path: Path) -> str:
    """``path`` relative to the working directory when below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _select(
    ap: argparse.ArgumentParser, nbs: list[Path], only: list[str] | None
) -> list[Path]:
    """Chapters whose names start with one of ``only`` (all when None); an ``only`` prefix
    that matches no chapter is a usage error (exit 2) listing the chapters."""
    if only is None:
        return nbs
    unknown = [p for p in only if not any(nb.name.startswith(p) for nb in nbs)]
    if unknown:
        names = ", ".join(nb.stem for nb in nbs) or "(none)"
        ap.error(f"--only {' '.join(unknown)}: no such chapter; available: {names}")
    return [nb for nb in nbs if any(nb.name.startswith(p) for p in only)]


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """Run the command line ``argv``; returns the exit status (argparse errors exit 2).

    ``root`` (or ``--root``) is the book folder with ``_toc.yml``; default: this repository.

    Why so long: the command line, read in the order it runs: parse and check the
    options, execute the chapters, report, write the ledger, render.
    """
    ap = argparse.ArgumentParser(
        prog="python -m bijepa_nb.book",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--only", nargs="+", default=None, help="chapter prefixes, e.g. 01 04"
    )
    ap.add_argument(
        "--quick", action="store_true", help="quick mode, into _build/quick/"
    )
    ap.add_argument("--no-html", action="store_true", help="skip jupyter-book build")
    ap.add_argument(
        "--cell-timeout",
        type=int,
        default=CELL_TIMEOUT_S,
        metavar="SECONDS",
        help=f"fail a chapter whose cell runs longer (default {CELL_TIMEOUT_S})",
    )
    ap.add_argument(
        "--root", type=Path, default=None, help="book root holding _toc.yml"
    )
    ap.add_argument(
        "--ratios",
        action="store_true",
        help="print characters of prose and code per chapter, run nothing",
    )
    ap.add_argument(
        "--ledger",
        action="store_true",
        help="rewrite book/ledger.md and book/_findings.md from book/results, run nothing",
    )
    ap.add_argument(
        "--set-repository",
        metavar="URL",
        help="point _config.yml and the chapters' links at https://github.com/OWNER/NAME",
    )
    ap.add_argument(
        "--branch",
        help="with --set-repository: the branch the links name (default: as configured)",
    )
    args = ap.parse_args(argv)
    root = Path(args.root or root or ROOT).resolve()
    if not (root / "_toc.yml").is_file():
        ap.error(f"--root {root}: no _toc.yml there")
    if args.branch is not None and args.set_repository is None:
        ap.error("--branch goes with --set-repository")
    if args.cell_timeout < 1:
        ap.error(f"--cell-timeout must be at least 1 second, got {args.cell_timeout}")
    if args.ratios:
        print(ratios_table(chapters(root)))
        return 0
    if args.ledger:
        for path in write_ledger(root / "book"):
            print(f"wrote {_show(path)}")
        return 0
    if args.set_repository is not None:
        try:
            written = set_repository(
                root, chapters(root), args.set_repository, args.branch
            )
        except ValueError as e:
            ap.error(f"--set-repository: {e}")
        for path in written:
            print(f"rewrote {_show(path)}")
        print(f"{len(written)} file(s) rewritten; every link now follows _config.yml")
        return 0
    if os.environ.get(
        "BIJEPA_DATA_DIR"
    ):  # chapters run in book/: make a relative one absolute
        os.environ["BIJEPA_DATA_DIR"] = os.path.abspath(os.environ["BIJEPA_DATA_DIR"])
    nbs = _select(ap, chapters(root), args.only)
    build = root / "_build"
    mode = "quick" if args.quick else "paper scale"
    timings: dict[str, float] = {}
    received: list[int] = []
    status = 0
    try:
        with _signals_raise_keyboard_interrupt(received):
            for nb in nbs:
                dest = build / "quick" / nb.name if args.quick else nb
                seconds = run_chapter(nb, dest, args.quick, build, args.cell_timeout)
                timings[nb.name] = round(seconds, 1)
                print(f"{nb.name}: {timings[nb.name]:.1f} s ({mode})", flush=True)
    except ChapterFailed as e:
        status = 128 + received[0] if received else 1
        what = signal.Signals(received[0]).name if received else _describe(e.cause)
        print(f"error: {e.nb.name} did not finish ({mode}): {what}", file=sys.stderr)
        print(f"  left untouched: {_show(e.dest)}", file=sys.stderr)
        kept = _show(e.kept) if e.kept else "none (it had not started writing)"
        print(f"  failed copy: {kept}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # between chapters, or a second Ctrl-C during the cleanup
        status = 128 + (received[0] if received else signal.SIGINT)
        print(
            "error: interrupted; no notebook was half written",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"total: {sum(timings.values()):.1f} s ({len(timings)} of {len(nbs)} chapters)"
    )
    if timings:
        build.mkdir(exist_ok=True)
        path = build / ("timings-quick.json" if args.quick else "timings.json")
        path.write_text(json.dumps(timings, indent=1))
    if status == 0 and not args.quick and (root / "book" / "results").is_dir():
        try:  # the ledger follows the saved results the chapters read
            for path in write_ledger(root / "book"):
                print(f"ledger: {_show(path)}")
        except FileNotFoundError as err:
            print(f"ledger: not rewritten ({err})", file=sys.stderr)
    if status == 0 and not args.no_html and not args.quick:
        status = build_html(root, build)
    return status


def build_html(root: Path, build: Path) -> int:
    """``jupyter-book build root -W -n`` with its output in ``build/html-build.log``;
    prints one line (the seconds and where the pages are), or on failure the log's last
    lines and its path. Returns 0, or jupyter-book's non-zero exit status."""
    jb = shutil.which("jupyter-book") or str(
        Path(sys.executable).with_name("jupyter-book")
    )
    build.mkdir(exist_ok=True)
    log = build / "html-build.log"
    t0 = time.perf_counter()
    with log.open("w") as sink:
        done = subprocess.run(
            [jb, "build", str(root), "-W", "-n"], stdout=sink, stderr=subprocess.STDOUT
        )
    if done.returncode == 0:
        print(f"html: {time.perf_counter() - t0:.1f} s, {_show(build / 'html')}/")
        return 0
    tail = log.read_text(errors="replace").splitlines()[-20:]
    print("\n".join(tail), file=sys.stderr)
    print(
        f"error: the HTML build failed (exit {done.returncode}); log: {_show(log)}",
        file=sys.stderr,
        flush=True,
    )
    return done.returncode
