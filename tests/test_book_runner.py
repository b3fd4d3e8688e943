"""``python -m bijepa_nb.book`` replaces a notebook only when its chapter ran to the end.

Every test runs the runner on a tiny book of its own (a temporary folder with a ``_toc.yml``
and one-cell notebooks), so a kernel start (a few seconds) is the only slow part.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from bijepa_nb.book import runner as book

OK = 'print("ok, quick =", quick)'
RAISES = 'raise ValueError("boom in chapter two")'


def make_book(root: Path, cells: dict[str, str]) -> dict[str, Path]:
    """Write a book under ``root``: one notebook per ``name: source`` (after a parameters
    cell declaring ``quick``), listed in ``_toc.yml`` in that order. Returns name -> path."""
    (root / "book").mkdir(parents=True)
    toc = ["format: jb-book", "root: book/intro", "chapters:"]
    paths: dict[str, Path] = {}
    for name, source in cells.items():
        params = nbformat.v4.new_code_cell("quick: bool = False  # quick mode")
        params.metadata["tags"] = ["parameters"]
        nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(source)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nb.metadata["language_info"] = {"name": "python"}
        paths[name] = root / "book" / f"{name}.ipynb"
        nbformat.write(nb, paths[name])
        toc.append(f"  - file: book/{name}")
    (root / "_toc.yml").write_text("\n".join(toc) + "\n")
    return paths


def outputs_text(path: Path) -> str:
    """Every stream and error output of notebook ``path``, joined."""
    parts: list[str] = []
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            parts.append(
                out.get("text", "") + out.get("ename", "") + out.get("evalue", "")
            )
    return "\n".join(parts)


def test_success_replaces_the_notebook_and_writes_timings(tmp_path: Path) -> None:
    paths = make_book(tmp_path, {"01_ok": OK})
    before = paths["01_ok"].read_bytes()
    assert book.main(["--no-html"], root=tmp_path) == 0
    assert paths["01_ok"].read_bytes() != before
    assert "ok, quick = False" in outputs_text(paths["01_ok"])
    assert list((tmp_path / "_build" / "running").iterdir()) == []
    assert not (tmp_path / "_build" / "failed").exists()
    assert list(json.loads((tmp_path / "_build" / "timings.json").read_text())) == [
        "01_ok.ipynb"
    ]


def test_quick_mode_writes_only_build_quick(tmp_path: Path) -> None:
    paths = make_book(tmp_path, {"01_ok": OK})
    before = paths["01_ok"].read_bytes()
    assert book.main(["--root", str(tmp_path), "--quick", "--only", "01"]) == 0
    assert paths["01_ok"].read_bytes() == before
    assert "ok, quick = True" in outputs_text(
        tmp_path / "_build" / "quick" / "01_ok.ipynb"
    )
    assert (tmp_path / "_build" / "timings-quick.json").exists()


def test_a_chapter_that_raises_leaves_its_notebook_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_book(tmp_path, {"01_ok": OK, "02_raises": RAISES, "03_after": OK})
    before = {name: p.read_bytes() for name, p in paths.items()}
    assert book.main(["--root", str(tmp_path), "--no-html"]) == 1
    assert paths["01_ok"].read_bytes() != before["01_ok"]  # finished before the failure
    assert paths["02_raises"].read_bytes() == before["02_raises"]
    assert paths["03_after"].read_bytes() == before["03_after"]  # never started
    failed = tmp_path / "_build" / "failed" / "02_raises.ipynb"
    assert "boom in chapter two" in outputs_text(failed)
    err = capsys.readouterr().err
    assert "02_raises.ipynb" in err and "ValueError: boom in chapter two" in err
    assert str(Path("_build", "failed", "02_raises.ipynb")) in err
    timings = json.loads((tmp_path / "_build" / "timings.json").read_text())
    assert list(timings) == ["01_ok.ipynb"]


@pytest.mark.parametrize(
    ("sig", "quick"),
    [(signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["SIGINT-paper-scale", "SIGTERM-quick"],
)
def test_a_signal_during_a_chapter_leaves_its_notebook_untouched(
    tmp_path: Path, sig: signal.Signals, quick: bool
) -> None:
    marker = tmp_path / "kernel.pid"
    sleeps = f"import os, pathlib, time\npathlib.Path({str(marker)!r}).write_text(str(os.getpid()))"
    paths = make_book(tmp_path / "root", {"01_sleeps": sleeps + "\ntime.sleep(120)"})
    dest = paths["01_sleeps"]
    if quick:  # a quick copy from an earlier run must survive as well
        dest = tmp_path / "root" / "_build" / "quick" / "01_sleeps.ipynb"
        dest.parent.mkdir(parents=True)
        dest.write_text("an earlier quick run")
    before = {p: p.read_bytes() for p in (paths["01_sleeps"], dest)}
    cmd = [
        sys.executable,
        "-m",
        "bijepa_nb.book",
        "--root",
        "root",
        "--only",
        "01",
        "--no-html",
    ]
    proc = subprocess.Popen(
        cmd + ["--quick"] * quick,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the chapter never started"
            time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, (out, err)
    assert {p: p.read_bytes() for p in before} == before
    assert (tmp_path / "root" / "_build" / "failed" / "01_sleeps.ipynb").exists()
    mode = "quick" if quick else "paper scale"
    assert f"01_sleeps.ipynb did not finish ({mode}): {sig.name}" in err
    assert str(Path("root", "_build", "failed", "01_sleeps.ipynb")) in err
    assert book.KERNEL_TCP_WARNING not in out + err
    assert "Traceback" not in err  # the busy kernel was killed, not asked to shut down
    kernel_pid = int(marker.read_text())
    for _ in range(50):  # the kernel was shut down, not orphaned
        try:
            os.kill(kernel_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(kernel_pid, signal.SIGKILL)
        pytest.fail(f"kernel {kernel_pid} still running after the runner exited")


def test_unknown_only_prefix_is_an_error_listing_the_chapters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_book(tmp_path, {"01_ok": OK, "02_raises": RAISES})
    with pytest.raises(SystemExit) as exc:
        book.main(["--root", str(tmp_path), "--only", "01", "99", "--no-html"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--only 99" in err and "01_ok, 02_raises" in err
    with pytest.raises(SystemExit) as exc:
        book.main(["--root", str(tmp_path), "--no-html", "--only"])
    assert exc.value.code == 2
    assert not (tmp_path / "_build").exists()  # nothing ran


def test_default_root_is_this_repository() -> None:
    names = [nb.name for nb in book.chapters()]
    assert book.ROOT == Path(__file__).resolve().parents[1]
    assert names[0].startswith("01_") and all(n.endswith(".ipynb") for n in names)


def test_a_page_with_sections_runs_after_them(tmp_path: Path) -> None:
    toc = ["format: jb-book", "root: intro", "chapters:", "  - file: a"]
    toc += ["  - file: b", "    sections:", "      - file: b1", "      - file: b2"]
    (tmp_path / "_toc.yml").write_text("\n".join([*toc, "  - file: c", ""]))
    for name in ("a", "b", "b1", "b2", "c"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert [nb.stem for nb in book.chapters(tmp_path)] == ["a", "b1", "b2", "b", "c"]


def test_kernel_stderr_filter_drops_only_known_chatter() -> None:
    lines = [
        b"[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All ...\n",
        b"Assertion failed: pfd.revents & POLLIN (src/signaler.cpp:238)\n",
        b"[IPKernelApp] WARNING | something else\n",
        b"a C library wrote this\n",
    ]
    sink = io.StringIO()
    book.forward_kernel_stderr(io.BytesIO(b"".join(lines)), sink)
    assert (
        sink.getvalue()
        == "[IPKernelApp] WARNING | something else\na C library wrote this\n"
    )


def test_output_is_one_line_per_chapter_then_the_total(tmp_path: Path) -> None:
    """What a user sees: the chapters' times and the total, nothing from the kernels."""
    make_book(tmp_path / "root", {"01_ok": OK, "02_ok": OK, "03_ok": OK})
    done = subprocess.run(
        [sys.executable, "-m", "bijepa_nb.book", "--root", "root", "--no-html"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout
    for name, line in zip(("01_ok", "02_ok", "03_ok"), lines):
        assert re.fullmatch(rf"{name}\.ipynb: \d+\.\d s \(paper scale\)", line), line
    assert re.fullmatch(r"total: \d+\.\d s \(3 of 3 chapters\)", lines[3]), lines[3]
    assert done.stderr == "", done.stderr  # no transport warning, no KeyboardInterrupt


def test_the_kernel_is_not_interrupted_at_shutdown(monkeypatch) -> None:
    """jupyter_client sends SIGINT before every shutdown; an idle kernel that is handling
    a message then logs "KeyboardInterrupt caught in kernel." The runner's manager skips
    that interrupt (the shutdown request stops the kernel) but still interrupts on demand."""
    import asyncio

    from jupyter_client.manager import AsyncKernelManager

    calls: list[str] = []

    async def spy(self) -> None:
        calls.append("interrupt")

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", spy)

    async def run() -> None:
        km = book._quiet_kernel_manager()(kernel_name="python3")
        await km.start_kernel()
        try:
            await km.interrupt_kernel()  # an explicit interrupt goes through
            assert calls == ["interrupt"]
        finally:
            await km.shutdown_kernel()
        assert not await km.is_alive()

    asyncio.run(run())
    assert calls == ["interrupt"]  # none added by the shutdown


def test_the_html_build_prints_one_line_and_logs_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "root"
    nb_path = make_book(root, {"01_ok": OK})["01_ok"]
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# One chapter"))  # a page title
    nbformat.write(nb, nb_path)
    (root / "_config.yml").write_text(
        'title: "tiny"\nexecute:\n  execute_notebooks: "off"\n'
        "exclude_patterns: [_build]\n"
    )
    cmd = [sys.executable, "-m", "bijepa_nb.book", "--root", "root"]
    run = lambda: subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    done = run()  # no book/intro.md: the build fails
    assert done.returncode != 0, done
    assert "error: the HTML build failed" in done.stderr
    assert str(Path("root", "_build", "html-build.log")) in done.stderr
    (root / "book" / "intro.md").write_text("# Tiny\n")
    done = run()
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and lines[1].startswith("total: "), done.stdout
    html = str(Path("root", "_build", "html"))
    assert re.fullmatch(rf"html: \d+\.\d s, {re.escape(html)}/", lines[2]), lines[2]
    assert done.stderr == "", done.stderr
    assert (root / "_build" / "html" / "book" / "01_ok.html").exists()
    assert "build succeeded" in (root / "_build" / "html-build.log").read_text()


def test_a_cell_over_the_cell_timeout_fails_its_chapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hung cell fails the run after ``--cell-timeout`` seconds instead of holding it."""
    paths = make_book(tmp_path, {"01_hangs": "import time\ntime.sleep(120)"})
    before = paths["01_hangs"].read_bytes()
    t0 = time.monotonic()
    assert book.main(["--root", str(tmp_path), "--no-html", "--cell-timeout", "3"]) == 1
    assert time.monotonic() - t0 < 60
    assert paths["01_hangs"].read_bytes() == before
    err = capsys.readouterr().err
    assert "01_hangs.ipynb did not finish" in err and "timed out" in err
    assert (tmp_path / "_build" / "failed" / "01_hangs.ipynb").exists()


def test_cell_timeout_below_one_second_is_a_usage_error(tmp_path: Path) -> None:
    make_book(tmp_path, {"01_ok": OK})
    with pytest.raises(SystemExit) as exc:
        book.main(["--root", str(tmp_path), "--cell-timeout", "0"])
    assert exc.value.code == 2
