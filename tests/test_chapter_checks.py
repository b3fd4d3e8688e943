"""``bijepa_nb.book.chapter.check_run_length`` and ``fetch_results``, and the run-length
parameters of chapters 07, 08 and 10 (their hidden validation cells run here alone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bijepa_nb.book.chapter import check_run_length, fetch_results

BOOK = Path(__file__).resolve().parents[1] / "book"


def test_in_range_passes_and_bounds_are_inclusive() -> None:
    for value in (1, 50, 100):
        check_run_length("num_steps", value, 1, 100, 0.01)


def test_above_the_bound_names_parameter_range_and_time() -> None:
    with pytest.raises(ValueError) as err:
        check_run_length("num_steps", 10**9, 1, 200_000, 0.003)
    msg = str(err.value)
    assert msg.startswith("num_steps must be an integer in [1, 200000], got 1000000000")
    assert "0.003 s per step" in msg and "the chapter would take about 35 days" in msg
    assert "200000 steps: about 10 minutes" in msg  # what the bound itself costs


def test_unit_and_what_appear_in_the_message() -> None:
    with pytest.raises(
        ValueError, match=r"per seed .* recomputing would take about 5 hours"
    ):
        check_run_length("num_seeds", 60, 2, 50, 300.0, "seed", "recomputing")


def test_below_the_bound_names_the_range_without_a_time() -> None:
    with pytest.raises(ValueError) as err:
        check_run_length("num_seeds", 1, 2, 50, 300.0, "seed")
    assert str(err.value) == "num_seeds must be an integer in [2, 50], got 1"


@pytest.mark.parametrize("value", [2.5, "100", None, True])
def test_non_integers_are_refused_naming_the_parameter(value) -> None:
    with pytest.raises(TypeError, match="num_steps"):
        check_run_length("num_steps", value, 1, 100, 0.01)


def test_bad_bounds_and_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="seconds_each"):
        check_run_length("num_steps", 5, 1, 100, 0.0)
    with pytest.raises(ValueError, match="low .* high"):
        check_run_length("num_steps", 5, 100, 1, 0.01)


def test_fetch_results_downloads_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    served = tmp_path / "served" / "book"
    (served / "results").mkdir(parents=True)
    (served / "results" / "a.json").write_text('{"a": 1}')
    (served / "results" / "b.json").write_text('{"b": 2}')
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    (work / "results" / "b.json").write_text("kept")
    monkeypatch.chdir(work)
    base = served.as_uri() + "/"
    got = fetch_results(base, ["results/a.json", "results/b.json", "results/c.json"])
    assert got == ["results/a.json"]  # b was there, c does not exist
    assert json.loads((work / "results" / "a.json").read_text()) == {"a": 1}
    assert (work / "results" / "b.json").read_text() == "kept"
    with pytest.raises(ValueError, match="base_url"):
        fetch_results(served.as_uri(), ["results/a.json"])


def test_fetch_results_honours_the_results_url_override(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    served = tmp_path / "mirror" / "book"
    (served / "results").mkdir(parents=True)
    (served / "results" / "a.json").write_text('{"a": 1}')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIJEPA_RESULTS_URL", served.as_uri() + "/")
    unreachable = "https://raw.invalid/OWNER/NAME/main/book/"
    assert fetch_results(unreachable, ["results/a.json"]) == ["results/a.json"]
    monkeypatch.setenv("BIJEPA_RESULTS_URL", (tmp_path / "nowhere").as_uri() + "/")
    assert fetch_results(unreachable, ["results/b.json"]) == []
    assert "could not fetch results/b.json from file://" in capsys.readouterr().out


#: chapter -> its run-length parameters, each with a value far too large
RUN_LENGTH = {
    "07_playground.ipynb": {"num_steps": 10**9},
    "08_verdict.ipynb": {"num_seeds": 10**4},
    "10_maps.ipynb": {"num_seeds": 10**4},
    "12_regimes.ipynb": {"num_seeds": 10**4, "mnist_seeds": 10**4},
}


def validate(chapter: str, monkeypatch, **overrides) -> dict:
    """Run ``chapter``'s parameters cell, apply ``overrides``, run its validation cell."""
    monkeypatch.delenv("BIJEPA_QUICK", raising=False)
    cells = json.loads((BOOK / chapter).read_text())["cells"]
    i = next(
        k for k, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])
    )
    ns: dict = {}
    exec("".join(cells[i]["source"]), ns)
    ns.update(overrides)
    exec("".join(cells[i + 1]["source"]), ns)
    return ns


@pytest.mark.parametrize("chapter", sorted(RUN_LENGTH))
def test_chapter_defaults_pass(chapter: str, monkeypatch) -> None:
    assert validate(chapter, monkeypatch)["QUICK"] is False


@pytest.mark.parametrize(
    ("chapter", "name"), [(c, n) for c, ps in sorted(RUN_LENGTH.items()) for n in ps]
)
def test_chapter_refuses_a_huge_run_with_its_time(
    chapter: str, name: str, monkeypatch
) -> None:
    with pytest.raises(ValueError) as err:
        validate(chapter, monkeypatch, **{name: RUN_LENGTH[chapter][name]})
    msg = str(err.value)
    assert (
        msg.startswith(f"{name} must be an integer in [") and "would take about" in msg
    )
    assert "days" in msg, msg


def test_geometric_mean_ci_is_the_log_scale_interval() -> None:
    import numpy as np

    from bijepa_nb.analysis.stats import geometric_mean_ci, mean_ci

    v = [0.01, 0.012, 0.011, 0.2]  # one bad seed
    g, logs = geometric_mean_ci(v), mean_ci(np.log(v))
    assert np.isclose(g.mean, np.exp(np.mean(np.log(v))))
    assert np.isclose(g.low, np.exp(logs.low)) and np.isclose(g.high, np.exp(logs.high))
    assert g.low > 0 and mean_ci(v).low < 0  # raw MSE: the interval crosses zero
    with pytest.raises(ValueError, match="positive"):
        geometric_mean_ci([0.1, 0.0])
