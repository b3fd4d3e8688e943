"""Every chapter's parameter defaults agree with the registry of the paper (bijepa_nb.experiments.registry)."""

import ast
import json
from pathlib import Path

import pytest

from bijepa_nb.experiments.registry import EXPERIMENTS

BOOK = Path(__file__).resolve().parents[1] / "book"


def parameters(chapter: str) -> dict:
    nb = json.loads((BOOK / chapter).read_text())
    cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{chapter}: one parameters cell"
    out = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        if isinstance(node, ast.AnnAssign):
            out[node.target.id] = ast.literal_eval(node.value)
    return out


def paper(experiment: str) -> dict:
    exp = EXPERIMENTS[experiment]
    mc, tc = exp.configs("expressive")
    return {**tc.to_dict(), "probe_epochs": exp.probe_epochs}


#: chapter -> {parameter: (experiment, registry field)}
EXPECTED = {
    "01_classic_jepa.ipynb": {
        k: ("sine", k)
        for k in (
            "num_steps",
            "batch_size",
            "lr",
            "weight_decay",
            "ema_momentum",
            "probe_epochs",
        )
    },
    "02_bijepa.ipynb": {
        k: ("sine", k) for k in ("num_steps", "alpha", "ema_momentum", "probe_epochs")
    },
    "03_stability.ipynb": {
        k: ("sine", k) for k in ("num_steps", "alpha", "probe_epochs")
    },
    "04_sine.ipynb": {k: ("sine", k) for k in ("num_steps", "probe_epochs")},
    "05_lorenz.ipynb": {k: ("lorenz", k) for k in ("num_steps", "probe_epochs")},
    "06_mnist.ipynb": {"probe_epochs": ("mnist", "probe_epochs")},
    "07_playground.ipynb": {
        "alpha": ("sine", "alpha"),
        "ema_momentum": ("sine", "ema_momentum"),
    },
    "09_1_past.ipynb": {
        "sine_steps": ("sine", "num_steps"),
        "lorenz_steps": ("lorenz", "num_steps"),
    },
    "09_2_alpha.ipynb": {"sine_steps": ("sine", "num_steps")},
    "09_3_invertible.ipynb": {"sine_steps": ("sine", "num_steps")},
    "09_5_anomalies.ipynb": {"lorenz_steps": ("lorenz", "num_steps")},
    "09_6_explosion.ipynb": {"sine_steps": ("sine", "num_steps")},
}


@pytest.mark.parametrize("chapter", sorted(EXPECTED))
def test_chapter_defaults_are_the_registrys(chapter):
    params = parameters(chapter)
    for name, (experiment, field) in EXPECTED[chapter].items():
        assert name in params, f"{chapter} has no parameter {name}"
        assert params[name] == paper(experiment)[field], (
            f"{chapter}: {name} = {params[name]}, the registry says {paper(experiment)[field]}"
        )


def test_every_chapter_is_checked():
    chapters = {p.name for p in BOOK.glob("[0-9][0-9]_*.ipynb")}
    # these train nothing themselves: the verdict chapter, chapter 9's summary page,
    # chapter 11 (its studies: tests/test_peers.py); chapter 12 takes every setting from
    # the registry; the far-horizon Lorenz runs of 09_4 have no paper setting
    skip = {"08_verdict.ipynb", "09_beyond.ipynb", "11_peers.ipynb", "12_regimes.ipynb"}
    unchecked = chapters - set(EXPECTED) - skip - {"09_4_futures.ipynb"}
    assert not unchecked - {p for p in chapters if "maps" in p}, (
        f"chapters without a registry check: {sorted(unchecked)}"
    )
