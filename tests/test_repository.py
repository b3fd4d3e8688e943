"""One repository URL: ``_config.yml`` holds it, every chapter's links follow it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bijepa_nb.book import runner as book
from bijepa_nb.book.repository import (
    Repository,
    mismatches,
    read_config,
    set_repository,
)

FORK = "https://github.com/someone-else/bijepa-fork"


def copy_book(dest: Path) -> list[Path]:
    """``_config.yml``, ``_toc.yml`` and the chapters, copied under ``dest``."""
    (dest / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copyfile(book.ROOT / name, dest / name)
    for nb in book.chapters():
        shutil.copyfile(nb, dest / "book" / nb.name)
    return book.chapters(dest)


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_every_chapter_follows_config() -> None:
    nbs = book.chapters()
    assert len(nbs) == 18  # 12 chapters and the six section pages of chapter 9
    assert mismatches(book.ROOT, nbs) == []


def test_set_repository_round_trips_with_a_branch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nbs = copy_book(tmp_path)
    files = nbs + [tmp_path / "_config.yml"]
    before = {p: p.read_bytes() for p in files}
    original = read_config(tmp_path)
    assert original.branch == "main"
    args = ["--root", str(tmp_path), "--set-repository", FORK, "--branch", "dev"]
    assert book.main(args) == 0
    assert "19 file(s) rewritten" in capsys.readouterr().out
    assert read_config(tmp_path) == Repository(FORK, "dev")
    assert mismatches(tmp_path, nbs) == []
    for nb in nbs:
        text = nb.read_text(encoding="utf-8")
        assert original.slug not in text, nb.name  # every derived place moved
        assert (
            f"{FORK}/blob/dev/book/{nb.name}".replace(
                "https://github.com/", "https://colab.research.google.com/github/"
            )
            in text
            and f"git+{FORK}@dev" in text
        )
        for old, new in zip(json.loads(before[nb])["cells"], cells(nb)):
            assert old.get("outputs") == new.get("outputs")  # outputs untouched
            assert old["metadata"] == new["metadata"]
    playground = (tmp_path / "book" / "07_playground.ipynb").read_text()
    assert "raw.githubusercontent.com/someone-else/bijepa-fork/dev/book/" in playground
    config = (tmp_path / "_config.yml").read_text()
    assert "url: " + FORK in config and "branch: dev" in config
    assert "# Chapters are executed by papermill" in config  # comments kept
    set_repository(tmp_path, nbs, original.url, original.branch)
    assert {p: p.read_bytes() for p in files} == before  # byte for byte back


def test_set_repository_to_the_current_url_writes_nothing(tmp_path: Path) -> None:
    nbs = copy_book(tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in nbs}
    assert set_repository(tmp_path, nbs, read_config(tmp_path).url) == []
    assert {p: p.stat().st_mtime_ns for p in nbs} == mtimes


def test_a_chapter_that_disagrees_is_named(tmp_path: Path) -> None:
    nbs = copy_book(tmp_path)
    nb = tmp_path / "book" / "04_sine.ipynb"
    text = nb.read_text(encoding="utf-8")
    nb.write_text(text.replace("github/bijepa-book/", "github/elsewhere/", 1))
    problems = mismatches(tmp_path, nbs)
    assert len(problems) == 1 and problems[0].startswith("04_sine.ipynb: cell 0: Colab")
    other = tmp_path / "book" / "05_lorenz.ipynb"
    other.write_text(text)  # chapter 4's notebook under chapter 5's name
    assert any(
        p.startswith("05_lorenz.ipynb") and "04_sine.ipynb" in p
        for p in mismatches(tmp_path, nbs)
    )


def test_a_chapter_without_its_links_is_named(tmp_path: Path) -> None:
    nbs = copy_book(tmp_path)
    nb = json.loads(nbs[0].read_text())
    nb["cells"] = nb["cells"][2:]  # drop the title (Colab link) and the install cell
    nbs[0].write_text(json.dumps(nb))
    problems = mismatches(tmp_path, nbs)
    assert any("no Colab link" in p for p in problems)
    assert any("no install cell" in p for p in problems)


@pytest.mark.parametrize(
    ("url", "branch", "match"),
    [
        ("https://gitlab.com/a/b", None, "https://github.com/OWNER/NAME"),
        ("https://github.com/a/b.git", None, "no .git"),
        ("https://github.com/a/b/", None, "trailing slash"),
        ("https://github.com/a/b", "bad branch", "branch must be"),
        ("https://github.com/a/b", "feature/x", "no '/'"),
    ],
)
def test_bad_urls_are_refused_before_anything_is_written(
    tmp_path: Path, url: str, branch: str | None, match: str
) -> None:
    nbs = copy_book(tmp_path)
    before = {p: p.read_bytes() for p in nbs + [tmp_path / "_config.yml"]}
    with pytest.raises(ValueError, match=match):
        set_repository(tmp_path, nbs, url, branch)
    assert {p: p.read_bytes() for p in before} == before


def test_command_line_errors_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nbs = copy_book(tmp_path)
    before = {p: p.read_bytes() for p in nbs + [tmp_path / "_config.yml"]}
    for argv in (
        ["--set-repository", "https://gitlab.com/a/b"],
        ["--branch", "dev"],  # without --set-repository
    ):
        with pytest.raises(SystemExit) as exc:
            book.main(["--root", str(tmp_path), *argv])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--set-repository: repository URL must look like" in err
    assert "--branch goes with --set-repository" in err
    assert {p: p.read_bytes() for p in before} == before
