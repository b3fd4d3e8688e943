"""ruff lint and format over the package, the tests and the chapters (config in pyproject)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    try:
        import ruff  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.fail("ruff is not installed: pip install -r requirements.txt")
    cmd = [sys.executable, "-m", "ruff", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_is_clean():
    out = _ruff("check", "--output-format", "concise", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_clean():
    out = _ruff("format", "--check", ".")
    assert out.returncode == 0, (
        "run `ruff format .` (parameter cells: keep each line short by hand, see "
        "README)\n" + out.stdout + out.stderr
    )


def test_ruff_sees_the_chapters():
    """The notebooks are linted, not silently skipped."""
    out = _ruff("check", "--show-files", ".")
    assert "book/04_sine.ipynb" in out.stdout.replace("\\", "/"), out.stdout
