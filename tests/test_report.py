"""Paper-vs-ours tables, the forecast panel and the one training path behind them."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from bijepa_nb.analysis import plotting, report
from bijepa_nb.analysis.stats import mean_ci
from bijepa_nb.core.data import first_target_step
from bijepa_nb.core.models import build_model
from bijepa_nb.core.probes import evaluate
from bijepa_nb.core.training import train
from bijepa_nb.experiments import pipeline
from bijepa_nb.experiments import registry as paper
from bijepa_nb.experiments.paper_runs import run_experiment


def rows(md) -> list[list[str]]:
    text = md.data if hasattr(md, "data") else md
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()[2:]
    ]


def test_paper_table_reads_the_registry_and_gives_intervals():
    seeds = [
        {"train_loss": 0.01, "A_adam_probeset": 0.02, "B_adam_probeset": 0.03, "x": 1},
        {"train_loss": 0.02, "A_adam_probeset": 0.03, "B_adam_probeset": 0.05, "x": 3},
        {"train_loss": 0.03, "A_adam_probeset": 0.01, "B_adam_probeset": 0.04, "x": 2},
    ]
    md = report.paper_table("lorenz", {"expressive": seeds}, {"extra": "x"})
    header = md.data.splitlines()[0]
    assert "Protocol B (probe set), paper" in header and "extra" in header
    (row,) = rows(md)
    exp = paper.experiment("lorenz").paper["expressive"]
    assert row[0] == paper.VARIANTS["expressive"].label
    assert row[1] == f"{exp['train_loss']:.4f}" and row[5] == f"{exp['B']:.4f}"
    iv = mean_ci([0.03, 0.05, 0.04])
    assert row[6] == f"{iv.mean:.4f} [{iv.low:.4f}, {iv.high:.4f}]"
    assert row[7].startswith("2.0000 [")


def test_paper_table_refuses_what_the_paper_did_not_report():
    with pytest.raises(ValueError, match="restrictive"):
        report.paper_table("lorenz", {"restrictive": [{"B": 1.0}]})
    with pytest.raises(ValueError, match="no seed"):
        report.paper_table("sine", {"classic": []})
    with pytest.raises(ValueError, match="experiment"):
        report.paper_table("cifar", {"classic": [{}]})


def test_interval_of_one_seed_is_the_value():
    assert report.interval([0.5]) == "0.5000"


def test_run_experiment_is_the_plain_training_path():
    """The thin wrapper over the pipeline gives exactly build_model -> train -> probes."""
    r = run_experiment(
        "sine", "expressive", 3, num_steps=40, probe_epochs=5, device="cpu",
        progress=False,
    )  # fmt: skip
    exp = paper.experiment("sine")
    mc, tc = exp.configs("expressive", seed=3, num_steps=40, device="cpu")
    sd = exp.seed_data(3)
    m = build_model(mc, tc)
    h = train(m, sd.stream(tc.batch_size, "cpu"), tc)
    assert np.array_equal(h.total, r.history.total)
    assert evaluate(m, sd.probe, sd.test, epochs=5, seed=3) == r.scores
    got = r.metrics()
    assert (
        got["train_loss"] == h.fwd[-1]
        and got["B_adam_probeset"] == r.scores["B"]["adam_probeset"]
    )
    assert got["A_lstsq_heldout"] == r.scores["A"]["lstsq_heldout"]


def test_train_runs_unbatched_matches_train_and_refuses_batched_mnist():
    exp = paper.experiment("sine")
    runs = pipeline.seed_runs(exp, [0, 1], num_steps=20, device="cpu", progress=False)
    alone = pipeline.train_runs(exp, runs, batched=False)
    for t in alone:
        m = build_model(t.model_config, t.run.train)
        h = train(m, exp.seed_data(t.run.train.seed).stream(64, "cpu"), t.run.train)
        assert np.array_equal(h.total, t.history.total)
    with pytest.raises(ValueError, match="batched"):
        pipeline.train_runs("mnist", runs, batched=True)


def test_forecast_panel_draws_the_three_panels():
    r = run_experiment(
        "sine", "classic", 0, num_steps=20, probe_epochs=3, device="cpu",
        progress=False,
    )  # fmt: skip
    fig = plotting.forecast_panel(
        r.model, r.probe_set, r.test_set, 7, 3, 0, {"classic": r.history}, (-2, 2)
    )
    loss, batch, one = fig.axes
    assert len(batch.lines[0].get_xdata()) == 7  # n_show held-out sequences
    assert batch.get_ylim() == (-2, 2)
    assert loss.get_title() == "training loss"
    truth = first_target_step(r.test_set.target[:7])[:, 0]
    assert torch.allclose(
        torch.as_tensor(batch.lines[0].get_ydata(), dtype=torch.float32), truth
    )
    assert len(plotting.forecast_panel(r.model, r.probe_set, r.test_set).axes) == 2
    matplotlib.pyplot.close("all")
