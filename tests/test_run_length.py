"""Chapters 01-06 refuse run lengths far beyond paper scale, saying how long they would take.

Each chapter's hidden validation cell runs here on its own (after the parameters cell,
with one parameter replaced): the defaults must pass, and a huge value of every parameter
that sets run length must fail at once with an error naming it and giving the estimated
time (``bijepa_nb.book.chapter.check_run_length``).
"""

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"

#: chapter -> the parameters that set its run length, each with a value far too large
RUN_LENGTH = {
    "01_classic_jepa.ipynb": {"num_steps": 10**9, "probe_epochs": 10**9},
    "02_bijepa.ipynb": {
        "num_steps": 10**9,
        "probe_epochs": 10**9,
        "seeds": list(range(10_000)),
        "alphas": [0.5] * 10_000,
    },
    "03_stability.ipynb": {
        "num_steps": 10**9,
        "long_steps": 10**9,
        "probe_epochs": 10**9,
        "seeds": list(range(10_000)),
    },
    "04_sine.ipynb": {
        "num_steps": 10**9,
        "probe_epochs": 10**9,
        "seeds": list(range(10_000)),
    },
    "05_lorenz.ipynb": {
        "num_steps": 10**9,
        "probe_epochs": 10**9,
        "seeds": list(range(10_000)),
        "n_starts": 10**9,
    },
    "06_mnist.ipynb": {"num_steps": 10**9, "epochs": 10**9, "probe_epochs": 10**9},
}


def cells(chapter: str) -> tuple[str, str]:
    """(parameters cell, the validation cell right after it) of ``chapter``."""
    nb = json.loads((BOOK / chapter).read_text())
    src = ["".join(c["source"]) for c in nb["cells"]]
    i = next(
        k
        for k, c in enumerate(nb["cells"])
        if "parameters" in c["metadata"].get("tags", [])
    )
    assert "quick_mode(quick)" in src[i + 1], f"{chapter}: validation after parameters"
    return src[i], src[i + 1]


def validate(chapter: str, monkeypatch, **overrides) -> dict:
    monkeypatch.delenv("BIJEPA_QUICK", raising=False)
    params, check = cells(chapter)
    ns: dict = {}
    exec(params, ns)
    ns.update(overrides)
    exec(check, ns)
    return ns


@pytest.mark.parametrize("chapter", sorted(RUN_LENGTH))
def test_defaults_pass(chapter, monkeypatch):
    assert validate(chapter, monkeypatch)["QUICK"] is False


@pytest.mark.parametrize(
    "chapter,name",
    [(c, n) for c, names in sorted(RUN_LENGTH.items()) for n in names],
)
def test_huge_run_length_is_refused_with_the_time(chapter, name, monkeypatch):
    with pytest.raises(ValueError) as err:
        validate(chapter, monkeypatch, **{name: RUN_LENGTH[chapter][name]})
    msg = str(err.value)
    assert name in msg and "would take about" in msg, msg
    # the estimate is in the unit that fits: 10**9 steps are days, not seconds
    assert any(unit in msg for unit in ("days", "hours")), msg


def test_every_chapter_bounds_num_steps():
    for chapter in RUN_LENGTH:
        assert 'check_run_length("num_steps"' in cells(chapter)[1], chapter
