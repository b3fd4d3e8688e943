"""The maps sweep: grid checks, schema, one batched run per mode, bad input."""

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from bijepa_nb import sweep as sweep_cli
from bijepa_nb.experiments import sweep as sw


@pytest.fixture(scope="module")
def tiny():
    spec = sw.SweepSpec(
        "sine",
        modes=["unconstrained", "expressive"],
        alphas=[0.0, 1.0, 0.5],
        taus=[0.9, 1.0],
        seeds=[1, 0],
        num_steps=30,
        probe_epochs=5,
        n_show=4,
    )
    return sw.sweep(spec, log=lambda line: None)


def test_a_tiny_sweep_follows_the_schema(tiny):
    sw.validate(tiny)
    g = tiny["grid"]
    assert g == {
        "modes": ["unconstrained", "expressive"],
        "alpha": [0.0, 0.5, 1.0],
        "ema_momentum": [0.9, 1.0],
        "seeds": [0, 1],
    }
    assert len(tiny["points"]) == 2 * 3 * 2
    p = sw.point(tiny, "expressive", 0.5, 1.0)
    assert (p["mode"], p["alpha"], p["ema_momentum"]) == ("expressive", 0.5, 1.0)
    assert len(p["show"]["forecast"]["truth"]) == 4 and len(p["show"]["steps"]) == 30
    for q in tiny["points"]:
        assert all(v is not None and v > 0 for v in q["per_seed"]["B_lstsq_heldout"])
        bwd = q["per_seed"]["loss_last100_bwd"]
        assert (q["alpha"] == 1.0) == all(
            v == 0.0 for v in bwd
        )  # classic members report no backward loss
    json.dumps(tiny, allow_nan=False)  # strict JSON


def test_grid_points_are_the_runs_they_name(tiny):
    """A point's numbers are those of an ensemble of just that point: members never mix."""
    spec = sw.SweepSpec(
        "sine",
        modes=["expressive"],
        alphas=[0.5],
        taus=[1.0],
        seeds=[0, 1],
        num_steps=30,
        probe_epochs=5,
        n_show=4,
    )
    one = sw.sweep(spec, log=lambda line: None)
    a, b = (
        one["points"][0]["per_seed"],
        sw.point(tiny, "expressive", 0.5, 1.0)["per_seed"],
    )
    for k in ("loss_final_total", "B_lstsq_heldout", "norm_final"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-3)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"alphas": [0.5, 1.2]}, r"alpha\[\.\.\.\] must be in \[0, 1\]"),
        ({"taus": [-0.1]}, r"ema_momentum\[\.\.\.\] must be in \[0, 1\]"),
        ({"modes": ["explosive"]}, "modes"),
        ({"alphas": []}, "alpha must be a non-empty list"),
        ({"taus": [0.9, 0.9]}, "ema_momentum must not repeat"),
        ({"seeds": [0, -1]}, r"seeds\[\.\.\.\]"),
    ],
)
def test_bad_grids_are_refused_naming_the_parameter(kw, match):
    with pytest.raises(ValueError, match=match):
        sw.sweep(sw.SweepSpec("sine", **{"num_steps": 5, **kw}), log=lambda line: None)


def test_a_grid_too_large_for_memory_is_refused_before_training():
    with pytest.raises(MemoryError, match=r"needs about .* GiB"):
        sw.sweep(sw.SweepSpec("sine", max_bytes=10_000), log=lambda line: None)
    with pytest.raises(ValueError, match="experiment must be"):
        sw.sweep(sw.SweepSpec("mnist"))


def test_point_lookup_names_off_grid_values(tiny):
    with pytest.raises(
        ValueError, match=r"alpha must be one of the grid's values \[0.0, 0.5, 1.0\]"
    ):
        sw.point(tiny, "expressive", 0.3, 1.0)


def test_validate_rejects_broken_files(tiny):
    broken = json.loads(json.dumps(tiny))
    broken["points"][3]["per_seed"]["B_lstsq_heldout"].pop()
    with pytest.raises(ValueError, match=r"points\[3\].per_seed\['B_lstsq_heldout'\]"):
        sw.validate(broken)
    broken = json.loads(json.dumps(tiny))
    broken["points"].pop()
    with pytest.raises(ValueError, match="one entry per grid point"):
        sw.validate(broken)


def test_the_command_writes_a_quick_sweep(tmp_path, capsys):
    out = tmp_path / "m.json"
    sweep_cli.main(
        ["sine", "--quick", "--modes", "expressive", "--seeds", "1", "--out", str(out)]
    )
    r = json.loads(out.read_text())
    sw.validate(r)
    assert (
        r["quick"]
        and r["grid"]["alpha"] == [0.0, 0.5, 1.0]
        and "member-steps/s" in capsys.readouterr().out
    )
    with pytest.raises(SystemExit):
        sweep_cli.main(["sine", "--alpha", "0.5,2", "--out", str(out)])


def test_sweeps_of_single_modes_merge_into_the_grid(tiny):
    kw = dict(
        alphas=[0.0, 0.5, 1.0],
        taus=[0.9, 1.0],
        seeds=[0, 1],
        num_steps=30,
        probe_epochs=5,
        n_show=4,
    )

    def run(**more):
        return sw.sweep(sw.SweepSpec("sine", **{**kw, **more}), log=lambda line: None)

    parts = [run(modes=[m]) for m in ("expressive", "unconstrained")]
    merged = sw.merge(parts)
    assert merged["grid"]["modes"] == ["unconstrained", "expressive"]
    for a, b in zip(merged["points"], tiny["points"]):
        assert (a["mode"], a["alpha"], a["ema_momentum"]) == (
            b["mode"],
            b["alpha"],
            b["ema_momentum"],
        )
        np.testing.assert_allclose(
            a["per_seed"]["loss_final_total"],
            b["per_seed"]["loss_final_total"],
            rtol=1e-3,
        )
    with pytest.raises(ValueError, match="repeat a stability mode"):
        sw.merge([parts[0], parts[0]])
    other = run(modes=["restrictive"], seeds=[0, 2])
    with pytest.raises(ValueError, match="grid.seeds differs"):
        sw.merge([parts[0], other])


# ------------------------------------------------------- the output file (never lose work)

ROOT = Path(__file__).resolve().parents[1]
QUICK_CLI = [
    "sine",
    "--quick",
    "--modes",
    "expressive",
    "--seeds",
    "1",
    "--threads",
    "1",
]


def test_a_bad_out_is_refused_before_any_training(tmp_path):
    """Another grid, an empty file, a missing folder: one error line, exit 2, within
    seconds (Python and torch take most of them), nothing trained."""
    other = tmp_path / "other_grid.json"
    other.write_text(
        json.dumps(
            {
                "schema": sw.SCHEMA_VERSION,
                "experiment": "sine",
                "quick": True,
                "grid": {
                    "modes": ["expressive"],
                    "alpha": [0.5],
                    "ema_momentum": [0.9],
                    "seeds": [0],
                },
            }
        )
    )
    empty = tmp_path / "empty.json"
    empty.touch()
    cache = tmp_path / "cache"
    for out, says in (
        (other, "different 'grid'"),
        (empty, "is empty"),
        (tmp_path / "no" / "maps.json", "does not exist"),
        (tmp_path, "is a folder"),
    ):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bijepa_nb.sweep", *QUICK_CLI]
            + ["--cache-dir", str(cache), "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        seconds = time.perf_counter() - t0
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert says in lines[0] and str(out) in lines[0], lines[0]
        assert not cache.exists() and seconds < 15, seconds


def test_a_rerun_replaces_its_own_results_and_a_late_conflict_is_saved_aside(
    tmp_path, monkeypatch, capsys
):
    """The same grid again replaces the file; a file of another grid that appears at
    --out while training runs (another process) is not replaced: the results go to a
    side file in the temporary folder (--no-cache), named, exit status 1."""
    out = tmp_path / "maps.json"
    argv = [*QUICK_CLI, "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    sweep_cli.main(argv)
    sweep_cli.main(argv)  # a rerun of the same grid: replaced, from the cache
    assert "1 chunks: 1 from the cache" in capsys.readouterr().out
    first = json.loads(out.read_text())
    real = sweep_cli.sweep

    def another_run_writes_meanwhile(*args, **kw):
        result = real(*args, **kw)
        out.write_text(json.dumps({**first, "grid": {**first["grid"], "seeds": [7]}}))
        return result

    monkeypatch.setattr(sweep_cli, "sweep", another_run_writes_meanwhile)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(SystemExit) as exit_:
        sweep_cli.main([*QUICK_CLI, "--no-cache", "--out", str(out)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "different 'grid'" in err and "saved in" in err, err
    side = Path(err.split("saved in ")[1].split(" ")[0])
    assert side.parent == tmp_path / "tmp"
    saved = json.loads(side.read_text())
    sw.validate(saved)
    assert saved["points"] == first["points"]
    assert json.loads(out.read_text())["grid"]["seeds"] == [7], "the other file stays"


def test_a_sweep_spec_is_frozen_resolves_its_defaults_and_plans_its_chunks():
    spec = sw.SweepSpec(
        "sine", modes=["expressive"], alphas=[1.0, 0.5], taus=[0.9], seeds=[2, 0, 1]
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.threads = 3
    r = dataclasses.replace(spec, num_steps=5, chunk_size=4).resolved()
    assert (r.alphas, r.seeds, r.compile, r.probe_epochs) == (
        (0.5, 1.0),
        (0, 1, 2),
        False,
        sw.registry.experiment("sine").probe_epochs,
    )
    assert r.identity()["grid"]["alpha"] == [0.5, 1.0]
    chunks = sw.plan(r, "cpu")
    assert [len(c.fields["runs"]) for c in chunks] == [3, 3]
    assert chunks[0].fields["runs"][0] == [0.5, 0.9, 0]
