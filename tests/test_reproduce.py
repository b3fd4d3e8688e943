"""The reproduction JSON, its baselines and its statistics."""

import copy
import errno
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bijepa_nb import reproduce as reproduce_cli
from bijepa_nb.analysis.stats import mean_ci, paired_ratio_ci
from bijepa_nb.core.config import SineConfig
from bijepa_nb.core.data import (
    Split,
    make_generator,
    sine_sequences,
    split_context_target,
)
from bijepa_nb.experiments import baselines as B
from bijepa_nb.experiments import chunks
from bijepa_nb.experiments.pipeline import roughness
from bijepa_nb.experiments.reproduce import (
    PAPER,
    SPLITS,
    ReproduceSpec,
    metric_spec,
    reproduce,
    validate,
)


@pytest.fixture(scope="module")
def quick_sine():
    spec = ReproduceSpec("sine", [0, 1], quick=True, device="cpu")
    return reproduce(spec, log=lambda s: None)


def test_quick_sine_follows_the_schema(quick_sine):
    r = json.loads(json.dumps(quick_sine))  # strict JSON round trip (no NaN)
    validate(r)
    assert r["experiment"] == "sine" and r["seeds"] == [0, 1] and r["quick"] is True
    assert set(r["configs"]) == {
        "classic",
        "unconstrained",
        "expressive",
        "restrictive",
    }
    assert r["paper"] == PAPER["sine"]
    for m in r["metrics"].values():
        assert m["split"] in SPLITS and m["unit"]
    ex = r["configs"]["expressive"]["per_seed"]
    assert all(
        isinstance(v, float) and v > 0
        for v in ex["B_adam_heldout"] + ex["B_bwd_lstsq_heldout"]
    )
    assert ex["A_adam_heldout"][0] != ex["A_adam_heldout"][1]  # seeds differ
    assert r["configs"]["classic"]["per_seed"]["B_bwd_adam_heldout"] == [
        None,
        None,
    ]  # no backward predictor
    assert r["configs"]["classic"]["per_seed"]["loss_final_bwd"] == [0.0, 0.0]
    assert {
        "mean",
        "persistence",
        "linear_extrapolation",
        "lstsq_context",
        "sinusoid_fit",
        "noise_floor",
    } <= set(r["baselines"])
    assert r["baselines"]["noise_floor"]["per_seed"] == pytest.approx([0.0025, 0.0025])


def test_validate_names_what_is_wrong(quick_sine):
    bad = copy.deepcopy(quick_sine)
    bad["metrics"]["B_adam_heldout"]["unit"] = ""
    with pytest.raises(ValueError, match="B_adam_heldout.*unit"):
        validate(bad)
    bad = copy.deepcopy(quick_sine)
    bad["configs"]["classic"]["per_seed"]["A_adam_heldout"].pop()
    with pytest.raises(ValueError, match="one value per seed"):
        validate(bad)
    bad = copy.deepcopy(quick_sine)
    bad["baselines"]["persistence"]["split"] = "train"
    with pytest.raises(ValueError, match="held-out"):
        validate(bad)


def test_metric_units_and_splits():
    for exp in ("sine", "lorenz", "mnist"):
        spec = metric_spec(exp)
        assert all(v["split"] in SPLITS for v in spec.values())
    assert metric_spec("sine")["A_adam_probeset"]["split"] == "probe set"
    assert metric_spec("lorenz")["B_lstsq_heldout"]["unit"].startswith(
        "MSE, normalised"
    )
    assert metric_spec("mnist")["probe_acc_heldout"]["unit"] == "accuracy (fraction)"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="experiment"):
        reproduce(ReproduceSpec("cifar", [0]))
    with pytest.raises(ValueError, match="seeds"):
        reproduce(ReproduceSpec("sine", []))
    with pytest.raises(ValueError, match="repeat"):
        reproduce(ReproduceSpec("sine", [1, 1]))


def test_quick_mnist_on_real_digits(shared_data_dir):
    spec = ReproduceSpec("mnist", [0], quick=True, device="cpu")
    r = reproduce(spec, log=lambda s: None)
    validate(r)
    assert r["environment"]["mnist_source"] in ("offline-10k", "full")
    acc = r["baselines"]["supervised_acc"]["per_seed"][0]
    assert (
        0.0 <= acc <= 1.0
        and 0.0 <= r["configs"]["expressive"]["per_seed"]["probe_acc_heldout"][0] <= 1.0
    )


# ----------------------------------------------------------------------- baselines
def test_sinusoid_fit_recovers_noise_free_waves():
    cfg = SineConfig(noise_std=0.0)
    seq = sine_sequences(200, make_generator(0, "test"), cfg)
    ctx, tgt = split_context_target(seq, cfg.context_len)
    pred = B.sinusoid_fit(ctx, cfg, num_freqs=2001)
    assert float(((pred[:, 0] - tgt[:, 0]) ** 2).mean()) < 1e-6


def test_persistence_and_linear_extrapolation():
    ctx = torch.tensor([[[1.0, 2.0], [3.0, 5.0]]])  # [N=1, C=2, D=2]
    assert torch.equal(B.persistence(ctx), torch.tensor([[3.0, 5.0]]))
    assert torch.equal(B.linear_extrapolation(ctx), torch.tensor([[5.0, 8.0]]))


def test_forecast_baselines_order_on_sine():
    cfg = SineConfig()
    mk = lambda s: Split(
        *split_context_target(
            sine_sequences(1000, make_generator(s, "probe"), cfg), cfg.context_len
        )
    )
    b = B.forecast_baselines(mk(0), mk(1), "sine")
    assert b["noise_floor"] == pytest.approx(0.0025)
    assert b["noise_floor"] < b["sinusoid_fit"] < b["persistence"] < b["mean"]
    with pytest.raises(ValueError, match="experiment"):
        B.forecast_baselines(mk(0), mk(1), "mnist")


def test_chance_accuracy():
    assert (
        B.chance_accuracy(torch.tensor([1, 1, 2]), torch.tensor([1, 2, 2, 2])) == 0.25
    )
    with pytest.raises(ValueError, match="empty"):
        B.chance_accuracy(torch.tensor([], dtype=torch.long), torch.tensor([1]))


# --------------------------------------------------------------------------- stats
def test_mean_ci_matches_the_t_interval():
    ci = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n), s = 1
    assert ci.mean == 2.0 and ci.std == 1.0 and ci.n == 3
    assert ci.low == pytest.approx(2 - half) and ci.high == pytest.approx(2 + half)
    assert ci.excludes(5.0) and not ci.excludes(2.5)
    with pytest.raises(ValueError, match="finite"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)


def test_paired_ratio_ci():
    ci = paired_ratio_ci([2.0, 4.0, 8.0], [1.0, 2.0, 4.0])
    assert (
        ci.mean == pytest.approx(2.0)
        and ci.low == pytest.approx(2.0)
        and ci.high == pytest.approx(2.0)
    )
    with pytest.raises(ValueError, match="pair up"):
        paired_ratio_ci([1.0], [1.0, 2.0])


def test_roughness_separates_smooth_from_noisy():
    t = np.arange(2000)
    smooth = np.exp(-t / 500) + 0.01
    noisy = smooth * np.exp(0.3 * np.random.default_rng(0).standard_normal(2000))
    assert roughness(smooth) < 1e-3 < 0.2 < roughness(noisy) < 0.4
    with pytest.raises(ValueError, match="window"):
        roughness(smooth[:20])


def test_alpha_and_ema_momentum_travel_to_every_variant_once():
    spec = ReproduceSpec("sine", [0], quick=True, alpha=0.3, ema_momentum=0.99)
    r = reproduce(spec, log=lambda line: None)
    validate(r)
    assert (
        r["configs"]["expressive"]["alpha"] == 0.3
        and r["configs"]["classic"]["alpha"] == 1.0
    )
    for name, c in r["settings"]["configs"].items():
        assert c["train"]["ema_momentum"] == 0.99
        assert c["train"]["alpha"] == (1.0 if name == "classic" else 0.3)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        reproduce(ReproduceSpec("sine", [0], quick=True, alpha=1.5))


# ------------------------------------------------------- the output file (never lose work)

ROOT = Path(__file__).resolve().parents[1]


def _bad_outs(tmp_path: Path) -> dict[str, Path]:
    """--out paths the command must refuse before any work, by case."""
    empty = tmp_path / "empty.json"
    empty.write_text("")
    other = tmp_path / "lorenz.json"
    other.write_text(
        json.dumps(
            {
                "schema": "bijepa-reproduce/1",
                "experiment": "lorenz",
                "seeds": [0, 1],
                "quick": True,
            }
        )
    )
    seeds = tmp_path / "seeds.json"  # the same experiment, other seeds
    seeds.write_text(json.dumps({**json.loads(other.read_text()), "seeds": [0]}))
    garbage = tmp_path / "notes.json"
    garbage.write_text("not json")
    (tmp_path / "folder").mkdir()
    return {
        "empty file": empty,
        "another experiment": other,
        "other seeds": seeds,
        "not a results JSON": garbage,
        "a folder": tmp_path / "folder",
        "a missing folder": tmp_path / "missing" / "out.json",
        "a file as folder": empty / "out.json",
    }


def _refused(cmd: list[str], out: Path, cache: Path) -> str:
    """Run a command line that must refuse ``out`` at once: exit 2, one ``error:`` line
    on stderr naming it, no traceback, nothing trained (no output, no cache entry)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", *cmd, "--cache-dir", str(cache), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.perf_counter() - t0
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(out) in lines[0] or str(out.parent) in lines[0], lines[0]
    assert proc.stdout == "", "nothing may run before the refusal"
    assert not cache.exists(), "no chunk may be trained before the refusal"
    assert seconds < 15, f"the refusal took {seconds:.1f} s"
    return lines[0]


def test_a_bad_out_is_refused_before_any_training(tmp_path):
    cache = tmp_path / "cache"
    for case, out in _bad_outs(tmp_path).items():
        cmd = ["bijepa_nb.reproduce", "sine", "--seeds", "2", "--quick"]
        line = _refused(cmd, out, cache)
        assert ("--force" in line) == (out.is_file()), (case, line)


def test_mnist_refuses_a_bad_out_before_loading_or_training(tmp_path):
    """Without --ray MNIST has no cache: a refusal after training lost minutes of work."""
    out = _bad_outs(tmp_path)["empty file"]
    cmd = ["bijepa_nb.reproduce", "mnist", "--seeds", "1", "--quick"]
    assert "is empty" in _refused(cmd, out, tmp_path / "cache")


def test_results_that_cannot_be_written_are_saved_aside(tmp_path, monkeypatch, capsys):
    """The disk fills up (or the folder goes away) during training: the results go to
    a side file beside the cache, the message names it, the exit status is 1."""
    out, cache = tmp_path / "sine.json", tmp_path / "cache"
    real = chunks.write_json_atomic

    def full_disk(path, obj, indent=None):
        if Path(path) == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, obj, indent)

    monkeypatch.setattr(chunks, "write_json_atomic", full_disk)
    argv = ["sine", "--seeds", "1", "--quick", "--threads", "1"]
    with pytest.raises(SystemExit) as exit_:
        reproduce_cli.main([*argv, "--cache-dir", str(cache), "--out", str(out)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: could not write {out}") and "No space" in err, err
    side = Path(err.split("saved in ")[1].split(" ")[0])
    assert side.parent == cache / "unsaved" and side.name.endswith("-sine.json")
    validate(json.loads(side.read_text()))
    assert not out.exists()


def test_mnist_in_process_resumes_from_its_cache(shared_data_dir, tmp_path):
    """MNIST without Ray: every finished (variant, seed) task is cached as it finishes;
    a rerun after losing one (as after Ctrl-C) computes only that one and gives the
    same per-seed results."""
    spec = ReproduceSpec("mnist", [0], quick=True, device="cpu")
    logs: list[str] = []
    first = reproduce(spec, log=lambda s: None, cache_dir=tmp_path)
    assert first["execution"] == {
        "backend": "in-process",
        "chunks": 3,
        "from_cache": 0,
        "computed": 3,
    }
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 3
    files[1].unlink()
    again = reproduce(spec, log=logs.append, cache_dir=tmp_path)
    validate(again)
    assert again["execution"]["from_cache"] == 2 and again["execution"]["computed"] == 1
    assert any("3 MNIST tasks: 2 from the cache" in line for line in logs), logs
    assert again["configs"] == first["configs"]
    assert again["baselines"] == first["baselines"]
    assert again["checkpoints"] == first["checkpoints"]
