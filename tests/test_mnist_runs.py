"""MNIST runs at the paper's step budget: checkpoints, diagnostics, worker processes, probe curves."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bijepa_nb.experiments import mnist as D
from bijepa_nb.experiments import mnist_runs as M
from bijepa_nb.experiments.mnist import classification_probe, decoder_probe
from bijepa_nb.experiments.registry import EXPERIMENTS

BOOK = Path(__file__).resolve().parents[1] / "book"


@pytest.fixture(scope="module")
def tiny():
    g = torch.Generator().manual_seed(0)
    img = lambda n: torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    lab = lambda n: torch.arange(n) % 10
    return D.MnistData(img(48), lab(48), img(20), lab(20), "offline-10k")


def test_registry_keeps_the_papers_step_budget():
    exp = EXPERIMENTS["mnist"]
    assert (
        exp.train["num_steps"] == 2350 and exp.train["batch_size"] == 256
    )  # 10 x 60k / 256
    assert exp.probe_epochs == 100
    assert D.mnist_num_steps(60000) == 2350 and D.mnist_num_steps(8000) == 320


def test_chapter_6_trains_the_registry_budget():
    nb = json.loads((BOOK / "06_mnist.ipynb").read_text())
    src = "".join(
        next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))[
            "source"
        ]
    )
    assert "num_steps: int = 2350" in src and "epochs: int = 0" in src
    assert "caveat()" in "".join("".join(c["source"]) for c in nb["cells"]), (
        "the data paragraph comes from the loader"
    )


def test_effective_rank_and_diagnostics():
    x = torch.randn(2000, 8, dtype=torch.float64)
    assert 7.5 < M.effective_rank(x) <= 8.0
    line = torch.randn(500, 1) * torch.ones(1, 8)
    assert M.effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    d = M.embedding_diagnostics(
        torch.cat([x[:, :4], torch.zeros(2000, 4, dtype=torch.float64)], 1)
    )
    assert (
        d["dead_dim_frac"] == 0.5
        and d["embed_std_min"] == 0.0
        and 3.5 < d["effective_rank"] <= 4.0
    )


def test_probe_curves_equal_shorter_probes():
    g = torch.Generator().manual_seed(1)
    f_tr, f_ev = torch.randn(300, 16, generator=g), torch.randn(100, 16, generator=g)
    y_tr, y_ev = (
        torch.randint(0, 10, (300,), generator=g),
        torch.randint(0, 10, (100,), generator=g),
    )
    long = classification_probe(f_tr, y_tr, f_ev, y_ev, epochs=5, seed=3, record=(2, 5))
    short = classification_probe(f_tr, y_tr, f_ev, y_ev, epochs=2, seed=3)
    assert long["curve"][2] == (short["train_acc"], short["eval_acc"])
    assert long["curve"][5] == (long["train_acc"], long["eval_acc"])
    r_tr, r_ev = (
        torch.rand(300, 1, 28, 14, generator=g),
        torch.rand(100, 1, 28, 14, generator=g),
    )
    _, dl = decoder_probe(f_tr, r_tr, f_ev, r_ev, epochs=3, seed=3, record=(1, 3))
    _, ds = decoder_probe(f_tr, r_tr, f_ev, r_ev, epochs=1, seed=3)
    assert (
        dl["curve"][1] == (ds["train_mse"], ds["eval_mse"])
        and dl["curve"][3][1] == dl["eval_mse"]
    )


def test_checkpoints_do_not_change_training_and_step_0_is_the_random_encoder(tiny):
    sets = M.MnistSets.of(tiny)
    with_ck = M.run_task(
        M.MnistTask("expressive", 1, 4, 2, checkpoints=(0, 2), decoder_epochs=1), sets
    )
    without = M.run_task(
        M.MnistTask("expressive", 1, 4, 2, checkpoints=(), decoder_epochs=1), sets
    )
    np.testing.assert_array_equal(with_ck["history"].total, without["history"].total)
    assert with_ck["final"] == without["final"]
    assert (
        with_ck["checkpoint_steps"] == [0, 2, 4]
        and len(with_ck["checkpoints"]["probe_acc_heldout"]) == 3
    )
    base = M.run_task(M.MnistTask(M.BASELINES, 1, 4, 2, decoder_epochs=1), sets)
    for k, v in base["random_encoder"].items():
        assert with_ck["checkpoints"][k][0] == v, (
            k
        )  # identical encoder, identical probes
    classic = M.run_task(
        M.MnistTask("classic", 1, 4, 2, checkpoints=(0,), decoder_epochs=1), sets
    )
    assert (
        classic["checkpoints"]["probe_acc_heldout"][0]
        == base["random_encoder"]["probe_acc_heldout"]
    )
    assert (
        base["supervised_epochs"] == 4
    )  # the JEPAs' 4 steps at one step per epoch of 48 images
    assert set(base["values"]) >= {
        "raw_pixels_acc",
        "random_encoder_acc",
        "supervised_acc",
    }


def test_results_do_not_depend_on_the_number_of_workers(tiny):
    tasks = [
        M.MnistTask(v, 0, 3, 2, checkpoints=(1,), decoder_epochs=1)
        for v in ("classic", "expressive")
    ]
    one = M.run_tasks(tasks, tiny, workers=1)
    two = M.run_tasks(tasks, tiny, workers=2)
    for a, b in zip(one, two):
        assert (
            a["variant"] == b["variant"]
            and a["final"] == b["final"]
            and a["checkpoints"] == b["checkpoints"]
        )
        np.testing.assert_array_equal(a["history"].total, b["history"].total)


def test_run_tasks_refuses_unknown_variants(tiny):
    with pytest.raises(ValueError, match="variant"):
        M.run_tasks([M.MnistTask("unconstrained", 0, 2, 1)], tiny, workers=1)


def test_run_experiment_uses_the_step_budget_or_epochs(tiny):
    from bijepa_nb.experiments.paper_runs import run_experiment

    r = run_experiment(
        "mnist",
        "classic",
        0,
        data=tiny,
        epochs=2,
        probe_epochs=1,
        progress=False,
        num_threads=1,
    )
    assert len(r.history) == 2  # 2 epochs of 48 images at batch 256
    with pytest.raises(ValueError, match="either epochs or num_steps"):
        run_experiment("mnist", "classic", 0, data=tiny, epochs=2, num_steps=5)
