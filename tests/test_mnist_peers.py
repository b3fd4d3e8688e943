"""The MNIST peers study: one model's step is the batched ensembles' loss lifted to one
member, the conv JEPA trains under every objective, bad input is refused before any
work, a small study follows its schema and a rerun comes from the cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from bijepa_nb import peers as cli
from bijepa_nb.analysis import peers as ap
from bijepa_nb.core.models import build_model
from bijepa_nb.experiments import mnist as D
from bijepa_nb.experiments import mnist_peers as mp
from bijepa_nb.experiments import peers as pe
from bijepa_nb.experiments import registry

BOOK = Path(__file__).resolve().parents[1] / "book"


def _mlp(name: str, seed: int = 0):
    exp = registry.experiment("sine")
    mc, tc = exp.mode_configs(
        "expressive", alpha=pe.objective(name).alpha, seed=seed, device="cpu"
    )
    return mc, tc


@pytest.mark.parametrize("name", mp.MNIST_OBJECTIVES)
def test_one_models_loss_is_the_ensembles_for_one_member(name):
    """``peer_loss`` lifted to one model gives what a one-member ensemble gives: the
    same draws (swap coins, SIGReg directions), the same head, the same terms."""
    mc, tc = _mlp(name)
    torch.manual_seed(0)
    x, y = (
        torch.randn(16, 10, dtype=torch.float64),
        torch.randn(16, 10, dtype=torch.float64),
    )
    one = build_model(mc, tc, cls=mp.PeerJEPA, objective_name=name, seed=3, out_dim=10)
    ens = pe.PeerEnsemble([build_model(mc, tc)], name, seed=3, out_dim=10)
    one, ens = one.double(), ens.double()
    got = one.loss(x, y)
    ref = ens.loss(x[None], y[None])
    assert [t.dim() for t in got] == [0, 0, 0]
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b[0], rtol=1e-12, atol=1e-12)


def test_classic_and_bijepa_are_the_papers_step():
    for name in ("classic", "bijepa"):
        mc, tc = _mlp(name)
        x, y = torch.randn(8, 10), torch.randn(8, 10)
        ref = build_model(mc, tc).loss(x, y)
        got = build_model(mc, tc, cls=mp.PeerJEPA, objective_name=name).loss(x, y)
        for a, b in zip(ref, got):
            assert torch.equal(a, b)


def test_objectives_without_a_target_encoder_leave_it_alone():
    mc, tc = _mlp("vicreg")
    m = build_model(mc, tc, cls=mp.PeerJEPA, objective_name="vicreg")
    before = [p.clone() for p in m.target_encoder.parameters()]
    m.ema_update(0.5)
    assert all(torch.equal(a, b) for a, b in zip(before, m.target_encoder.parameters()))


def test_a_conv_step_trains_under_every_objective():
    exp = registry.experiment("mnist")
    x, y = torch.rand(8, 1, 28, 14), torch.rand(8, 1, 28, 14)
    for name in mp.MNIST_OBJECTIVES:
        mc, tc = exp.configs("expressive", alpha=pe.objective(name).alpha, device="cpu")
        m = build_model(mc, tc, cls=mp.PeerJEPA, objective_name=name, out_dim=392)
        total, *_ = m.loss(x, y)
        total.backward()
        assert torch.isfinite(total), name
        grads = [p.grad for p in m.trainable_parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"objectives": ["compute_matched"]}, r"objective must be one of .*classic"),
        ({"objectives": ["byol"]}, r"objective must be one of"),
        ({"objectives": []}, r"objectives must name at least one"),
        ({"seeds": [0]}, r"seeds must be >= 2"),
        ({"seeds": [0, 0]}, r"seeds must be >= 2 distinct"),
        ({"num_steps": 0}, r"num_steps"),
        ({"probe_epochs": 0}, r"probe_epochs"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mp.MnistPeersSpec(**kwargs).resolved()


def test_a_wrong_alpha_is_refused():
    mc, tc = _mlp("classic")
    with pytest.raises(ValueError, match="needs alpha = 0.5"):
        mp.PeerJEPA(mc, 1.0, "bijepa")


def _digits() -> D.MnistData:
    g = torch.Generator().manual_seed(0)

    def img(n):
        return torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)

    def lab(n):
        return torch.arange(n) % 10

    return D.MnistData(img(120), lab(120), img(40), lab(40), "offline-10k")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    cache = tmp_path_factory.mktemp("mnist_peers_cache")
    spec = mp.MnistPeersSpec(
        objectives=("bijepa", "pixel", "sigreg"),
        seeds=(0, 1),
        num_steps=3,
        probe_epochs=2,
    )
    lines: list[str] = []
    out = mp.mnist_peers(spec, log=lines.append, cache_dir=cache, mnist=_digits())
    return spec, cache, out, lines


def test_a_small_study_follows_its_schema(small):
    _, _, out, _ = small
    mp.validate(out)
    assert set(out["results"]) == {"bijepa", "pixel", "sigreg"}
    for r in out["results"].values():
        acc, err = (
            r["per_seed"]["probe_acc_heldout"],
            r["per_seed"]["probe_err_heldout"],
        )
        assert all(abs(a + e - 1) < 1e-9 for a, e in zip(acc, err))
    assert len(out["baselines"]["raw_pixels"]["per_seed"]) == 2
    assert json.loads(json.dumps(out)) == out  # JSON-ready


def test_a_rerun_takes_every_chunk_from_the_cache(small):
    spec, cache, out, _ = small
    lines: list[str] = []
    again = mp.mnist_peers(spec, log=lines.append, cache_dir=cache, mnist=_digits())
    assert again["execution"]["computed"] == 0
    assert again["results"] == out["results"]


@pytest.mark.parametrize(
    "break_it, match",
    [
        (lambda r: r.update(schema="x"), "schema"),
        (
            lambda r: r["results"]["pixel"]["per_seed"].pop("effective_rank_heldout"),
            "per_seed",
        ),
        (lambda r: r["results"]["bijepa"]["diverged_at"].append(None), "diverged_at"),
        (lambda r: r["baselines"]["raw_pixels"]["per_seed"].pop(), "raw_pixels"),
    ],
)
def test_validate_names_what_breaks_the_schema(small, break_it, match):
    bad = json.loads(json.dumps(small[2]))
    break_it(bad)
    with pytest.raises(ValueError, match=match):
        mp.validate(bad)


def test_command_line_refuses_bad_input_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(
            [
                "mnist",
                "--objectives",
                "compute_matched",
                "--out",
                str(tmp_path / "x.json"),
            ]
        )
    assert e.value.code == 2
    assert "objective must be one of" in capsys.readouterr().err
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    with pytest.raises(SystemExit) as e:
        cli.main(["mnist", "--quick", "--out", str(existing)])
    assert e.value.code == 2


def test_committed_study_is_valid():
    path = BOOK / "results" / "peers_mnist.json"
    res = json.loads(path.read_text())
    mp.validate(res)
    assert not res["quick"] and len(res["seeds"]) >= 5
    assert set(res["results"]) == set(mp.MNIST_OBJECTIVES)
    assert res["settings"]["train"]["num_steps"] == mp.MNIST_STEPS


def test_a_short_study_scores_without_norm_growth(small):
    # 3 steps log one norm: no growth to report, a dash instead of an error
    out = small[2]
    assert all(
        math.isnan(g)
        for r in out["results"].values()
        for g in r["per_seed"]["norm_growth_second_half"]
    )
    rows = ap.mnist_score_rows(out)
    assert len(rows) == 3 + len(ap.MNIST_TRIVIAL)
    assert [r[4] for r in rows[:3]] == ["–"] * 3
    assert all(r[3] != "–" for r in rows[:3])  # the effective rank is there
