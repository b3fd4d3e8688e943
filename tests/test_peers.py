"""The peers study: its objectives' loss terms, the batched step they plug into, bad
input, the JSON schema, the command line and the committed results."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bijepa_nb import peers as cli
from bijepa_nb.analysis import peers as ap
from bijepa_nb.analysis.verdicts import family_verdicts
from bijepa_nb.core.models import build_model
from bijepa_nb.experiments import peers as pe
from bijepa_nb.experiments import registry
from bijepa_nb.experiments.ensemble import Ensemble

BOOK = Path(__file__).resolve().parents[1] / "book"


# ------------------------------------------------------------------ loss terms
def test_variance_term_is_one_for_a_collapsed_batch_and_zero_for_a_spread_one():
    z = torch.zeros(2, 64, 8)
    assert torch.allclose(pe.variance_term(z), torch.full((2,), 1 - math.sqrt(1e-4)))
    spread = torch.randn(2, 4096, 8, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.all(pe.variance_term(spread) == 0)


def test_covariance_term_sees_correlated_dimensions_only():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4096, 4, generator=g)
    assert float(pe.covariance_term(x)) < 0.01
    y = torch.cat([x[..., :1]] * 4, -1)  # four copies of one dimension
    assert float(pe.covariance_term(y)) > 2.5  # 12 off-diagonal entries near 1, / 4


def test_epps_pulley_separates_a_gaussian_from_shifted_and_collapsed_samples():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(1, 16, 64, generator=g)
    d = d / d.norm(dim=1, keepdim=True)
    z = torch.randn(1, 256, 16, generator=g)
    gauss, shifted = pe.epps_pulley(z, d), pe.epps_pulley(z + 1, d)
    collapsed = pe.epps_pulley(z / 10, d)
    # under the null N * E|ecf - phi|^2 integrates to about 1
    assert 0.2 < float(gauss) < 2.0
    assert float(shifted) > 40 * float(gauss) and float(collapsed) > 40 * float(gauss)


def test_infonce_is_low_when_each_prediction_matches_its_target_only():
    z = torch.eye(8).repeat(2, 1, 1)  # [2, 8, 8]: orthogonal targets
    assert float(pe.infonce(z, z, 0.1).max()) < 1e-3
    perm = z[:, torch.randperm(8, generator=torch.Generator().manual_seed(0))]
    assert float(pe.infonce(perm, z, 0.1).min()) > 1.0


# ---------------------------------------------------------------- the step
def _models(name: str, k: int = 3):
    exp = registry.experiment("sine")
    obj = pe.objective(name)
    out = []
    for s in range(k):
        mc, tc = exp.mode_configs("expressive", alpha=obj.alpha, seed=s, device="cpu")
        out.append(build_model(mc, tc))
    return out, mc


def _batch(k: int = 3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(k, 16, 10, generator=g), torch.randn(k, 16, 10, generator=g)


def test_classic_and_bijepa_objectives_are_the_ensembles_own_step():
    for name in ("classic", "bijepa"):
        models, _ = _models(name)
        x, y = _batch()
        ref = Ensemble(_models(name)[0]).loss(x, y)
        got = pe.PeerEnsemble(models, name).loss(x, y)
        for a, b in zip(ref, got):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", [n for n in pe.OBJECTIVES if n != "classic"])
def test_every_objective_trains_a_step_with_finite_losses(name):
    models, mc = _models(name)
    ens = pe.PeerEnsemble(models, name, seed=0, out_dim=mc.input_dim)
    params = ens.trainable_parameters()
    before = [p.detach().clone() for p in params]
    target_before = [p.detach().clone() for p in ens.target_encoder.parameters()]
    total, main, reg, emb = ens.loss(*_batch(), return_embeddings=True)
    assert total.shape == (3,) and torch.isfinite(total).all()
    assert torch.allclose(total, main + reg) or name == "bijepa"
    assert emb["online_x"].shape == emb["target_y"].shape == (3, 16, mc.embed_dim)
    opt = torch.optim.SGD(params, lr=0.1)
    opt.zero_grad()
    total.sum().backward()
    opt.step()
    ens.ema_update(0.5)
    assert all(
        not torch.equal(a, p) for a, p in zip(before, params) if p.grad is not None
    )
    if pe.OBJECTIVES[name].head is not None:  # the linear read-out is trained too
        assert ens.head.weight.grad is not None and ens.head.weight.grad.abs().sum() > 0
    moved = any(
        not torch.equal(a, p)
        for a, p in zip(target_before, ens.target_encoder.parameters())
    )
    assert moved == pe.OBJECTIVES[name].ema_target  # no EMA without a target


def test_swapped_views_swap_about_half_of_the_sequences():
    models, _ = _models("swapped")
    ens = pe.PeerEnsemble(models, "swapped", seed=0)
    x, y = _batch()
    seen = []
    ens._encodings = lambda c, t: seen.append((c, t)) or Ensemble._encodings(ens, c, t)
    ens.loss(x, y)
    c, t = seen[0]
    swapped = (c == y).all(-1)
    assert torch.equal(swapped, (t == x).all(-1))
    assert 0.25 < float(swapped.double().mean()) < 0.75


# ---------------------------------------------------------------- bad input
def test_unknown_objective_names_the_parameter_and_the_choices():
    with pytest.raises(
        ValueError, match=r"objective must be one of 'classic', 'bijepa'"
    ):
        pe.objective("byol")
    with pytest.raises(ValueError, match="objective must be one of"):
        pe.PeersSpec("sine", objectives=["classic", "byol"]).resolved()
    models, _ = _models("classic")
    with pytest.raises(ValueError, match="objective must be one of"):
        pe.PeerEnsemble(models, "byol")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"experiment": "mnist"}, r"experiment must be one of 'sine', 'lorenz'"),
        ({"objectives": []}, "objectives must name at least one"),
        ({"seeds": (0, 0)}, "seeds must be a non-empty list without repeats"),
        ({"seeds": (0, 100)}, "validation_seeds must not share a seed with seeds"),
        ({"num_steps": 10**6}, r"num_steps must be an integer in \[1, 100000\]"),
        ({"num_steps": 0}, r"num_steps must be an integer in \[1, 100000\], got 0"),
        ({"probe_epochs": -1}, r"probe_epochs must be an integer in \[1, 10000\]"),
        ({"threads": 0}, r"threads must be an integer in \[1, 64\]"),
        ({"device": "tpu"}, "device must be one of"),
    ],
)
def test_out_of_range_values_name_the_parameter_and_the_allowed_values(kwargs, match):
    spec = replace(pe.PeersSpec("sine"), **kwargs)
    with pytest.raises(ValueError, match=match):
        spec.resolved()


def test_a_member_with_the_wrong_alpha_or_a_head_without_out_dim_is_refused():
    models, _ = _models("bijepa")
    with pytest.raises(ValueError, match="needs members with alpha = 1.0"):
        pe.PeerEnsemble(models, "pixel", out_dim=10)
    models, _ = _models("pixel")
    with pytest.raises(TypeError, match="out_dim"):
        pe.PeerEnsemble(models, "pixel")


def test_command_line_refuses_bad_input_before_any_work(tmp_path, capsys):
    out = str(tmp_path / "p.json")
    with pytest.raises(SystemExit) as err:
        cli.main(["sine", "--objectives", "byol", "--out", out])
    assert err.value.code == 2 and "objective must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        cli.main(["sine", "--seeds", "1", "--out", out])
    assert err.value.code == 2 and "--seeds must be >= 2" in capsys.readouterr().err
    missing = str(tmp_path / "nowhere" / "p.json")
    with pytest.raises(SystemExit) as err:
        cli.main(["sine", "--quick", "--no-cache", "--out", missing])
    assert err.value.code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


# ------------------------------------------------------- a small study, end to end
@pytest.fixture(scope="module")
def study():
    spec = pe.PeersSpec(
        "sine",
        objectives=("classic", "bijepa", "pixel", "tuned_classic"),
        seeds=(0, 1),
        validation_seeds=(100, 101),
        num_steps=20,
        probe_epochs=2,
        quick=True,
        device="cpu",
    )
    return pe.peers(spec, log=lambda line: None)


def test_a_study_follows_its_schema_and_tunes_on_validation_seeds(study):
    pe.validate(study)
    assert list(study["results"]) == ["classic", "bijepa", "pixel", "tuned_classic"]
    s = study["search"]
    assert s["validation_seeds"] == [100, 101] and study["seeds"] == [0, 1]
    grid = np.asarray(s["scores"])
    i, j = np.unravel_index(np.argmin(grid), grid.shape)
    assert s["chosen"] == {"lr": s["lr"][i], "ema_momentum": s["ema_momentum"][j]}
    r = study["results"]
    assert r["pixel"]["per_seed"]["target_cosine"] == [None, None]
    assert all(0 < c <= 1 for c in r["classic"]["per_seed"]["target_cosine"])


@pytest.mark.parametrize(
    ("break_it", "match"),
    [
        (lambda r: r["results"]["classic"]["diverged_at"].pop(), "diverged_at"),
        (lambda r: r["results"]["bijepa"]["per_seed"].pop("effective_rank"), "metrics"),
        (lambda r: r.update(search=None), "search is null exactly when"),
        (lambda r: r["search"]["chosen"].update(lr=7.0), "search.chosen"),
        (lambda r: r["search"].update(validation_seeds=[0]), "must not overlap"),
        (lambda r: r.update(schema="bijepa-peers/0"), "schema must be"),
    ],
)
def test_validate_names_what_breaks_the_schema(study, break_it, match):
    broken = json.loads(json.dumps(study))
    break_it(broken)
    with pytest.raises(ValueError, match=match):
        pe.validate(broken)


# ------------------------------------------------------------ the verdict family
def test_family_verdicts_keep_a_word_only_where_holm_lets_it():
    rng = np.random.default_rng(0)
    a = np.exp(rng.normal(0, 0.1, 10))
    claims = {"clear": (a, 2 * a * np.exp(rng.normal(0, 0.1, 10)))}
    # a borderline claim: its interval excludes 1 alone, not after 20 other claims
    b = a * np.exp(rng.normal(0.09, 0.1, 10))
    claims["borderline"] = (a, b)
    for k in range(20):
        claims[f"null {k}"] = (a, a * np.exp(rng.normal(0, 0.1, 10)))
    alone = family_verdicts({"borderline": claims["borderline"]})["borderline"]
    fam = family_verdicts(claims)
    assert fam["clear"].word == "holds"
    assert alone.word == "holds" and fam["borderline"].word == "does not hold"
    assert fam["borderline"].comparison.verdict == "holds"  # the word alone
    reverse = family_verdicts({"r": (2 * a, a)})["r"]
    assert reverse.word == "reversed"


# ------------------------------------------------------------ committed results
@pytest.mark.parametrize("name", ["peers_sine.json", "peers_lorenz.json"])
def test_committed_study_is_valid_and_at_paper_scale(name):
    res = json.loads((BOOK / "results" / name).read_text())
    pe.validate(res)
    exp = registry.experiment(res["experiment"])
    assert not res["quick"] and len(res["seeds"]) >= 10
    assert set(res["results"]) == set(pe.OBJECTIVES)
    assert res["settings"]["train"]["num_steps"] == exp.train["num_steps"]
    assert not set(res["search"]["validation_seeds"]) & set(res["seeds"])
    n_base = len(ap.trivial(res))
    assert len(ap.judge({"task": res})) == len(pe.OBJECTIVES) * (1 + n_base) - 1


def test_a_rerun_takes_every_chunk_from_the_cache(tmp_path):
    spec = pe.PeersSpec(
        "lorenz",
        objectives=("autoencoder", "infonce"),
        seeds=(0, 1),
        num_steps=15,
        probe_epochs=2,
        quick=True,
        device="cpu",
    )
    first = pe.peers(spec, log=lambda line: None, cache_dir=tmp_path)
    again = pe.peers(spec, log=lambda line: None, cache_dir=tmp_path)
    assert first["execution"]["computed"] == 2 and again["execution"]["from_cache"] == 2
    assert again["results"] == first["results"] and first["search"] is None
    assert len(list(tmp_path.glob("*.json"))) == 2
