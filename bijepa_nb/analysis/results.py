"""The saved reproductions judged (chapters 6 and 8): per-seed values read from the JSON
files that ``bijepa_nb.experiments.reproduce`` writes, the paper's claims with the rule behind each
verdict, Holm's correction over their tests, and the same verdicts on a subset of the
seeds (to check that a verdict does not rest on which seeds happened to run).

Every verdict here is a stated rule applied to a t-interval over seeds
(``stats.mean_ci``); none reads one run's digits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..experiments.pipeline import ROUGHNESS_WINDOW
from ..experiments.registry import EXPERIMENTS
from .stats import (
    Interval,
    fmt_interval,
    geometric_mean_ci,
    holm,
    mean_ci,
    mean_std,
    paired_ratio_ci,
    t_pvalue,
)
from .verdicts import (
    EXPLOSION_LIMIT,
    Comparison,
    beats,
    better_or_worse,
    explodes,
    holm_family,
    lower_or_higher,
    side,
    word,
)

Results = Mapping[str, Any]  # one reproduction file, as ``reproduce.reproduce`` returns


# ------------------------------------------------------------------ reading the files
def values(res: Results, config: str, key: str) -> np.ndarray:
    """Per-seed values of metric ``key`` of ``config`` (diverged seeds, stored as null,
    are dropped): [seeds]."""
    per_seed = res["configs"][config]["per_seed"][key]
    return np.array([x for x in per_seed if x is not None], dtype=float)


def baseline(res: Results, name: str) -> np.ndarray:
    """Per-seed values of baseline ``name``: [seeds]."""
    return np.array(res["baselines"][name]["per_seed"], dtype=float)


def subset(res: Results, seeds: Sequence[int]) -> dict[str, Any]:
    """A copy of ``res`` holding only ``seeds`` (in that order): every per-seed list —
    metrics, divergence steps, baselines, checkpoint curves — keeps those seeds' entries.
    The verdict functions below then judge the subset as if only those seeds had run."""
    have = [int(s) for s in res["seeds"]]
    missing = [s for s in seeds if int(s) not in have]
    if missing or not seeds:
        raise ValueError(f"seeds must be a non-empty subset of {have}, got {seeds}")
    pos = [have.index(int(s)) for s in seeds]

    def pick(lst: Sequence[Any]) -> list[Any]:
        return [lst[i] for i in pos]

    out = copy.deepcopy(dict(res))
    out["seeds"] = [int(s) for s in seeds]
    for c in out["configs"].values():
        c["per_seed"] = {k: pick(v) for k, v in c["per_seed"].items()}
        c["diverged_at"] = pick(c["diverged_at"])
    for b in out["baselines"].values():
        b["per_seed"] = pick(b["per_seed"])
    ck = out.get("checkpoints")
    if ck:
        for c in ck["configs"].values():
            for k in c:
                c[k] = pick(c[k])
    return out


def checkpoint_curves(res: Results, configs: Sequence[str]) -> dict[str, dict]:
    """Metrics along training, from the file's checkpoints: curves[config][metric] is an
    array [seeds, checkpoints] (diverged seeds dropped); the steps are
    ``res["checkpoints"]["steps"]`` (step 0: the untrained encoder)."""
    ck = res["checkpoints"]
    return {
        c: {
            k: np.array([r for r in ck["configs"][c][k] if r is not None], dtype=float)
            for k in ck["metrics"]
        }
        for c in configs
    }


# ------------------------------------------------------------- chapter 6: MNIST verdicts
def paired_points(a: Sequence[float], b: Sequence[float], level: float = 0.95):
    """Interval of the paired difference 100 (a - b) over seeds, in points of accuracy
    (seeds where either is not finite are dropped)."""
    d = 100 * (np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return mean_ci(d[np.isfinite(d)], level)


#: Chapter 6's baselines, by the key of their accuracy in the file.
MNIST_OTHERS = {
    "random_encoder_acc": "random encoder",
    "raw_pixels_acc": "raw pixels",
    "supervised_acc": "supervised encoder",
}


def mnist_comparisons(
    res: Results, labels: Mapping[str, str], level: float = 0.95
) -> dict[str, Interval]:
    """Paired accuracy differences of the MNIST reproduction, in points: "BiJEPA -
    classic JEPA" and every JEPA against every baseline of ``MNIST_OTHERS``.
    labels: config -> printed name ({"classic": ..., "expressive": ...})."""
    acc = {c: values(res, c, "probe_acc_heldout") for c in labels}
    out = {
        f"{labels['expressive']} - {labels['classic']}": paired_points(
            acc["expressive"], acc["classic"], level
        )
    }
    for c, name in labels.items():
        for key, other in MNIST_OTHERS.items():
            out[f"{name} - {other}"] = paired_points(acc[c], baseline(res, key), level)
    return out


def decoder_gain(res: Results, level: float = 0.95) -> Interval:
    """Paired difference of held-out decoder MSE, BiJEPA - classic JEPA, over seeds
    (below 0: BiJEPA's embedding reconstructs the right half better)."""
    d = values(res, "expressive", "decoder_mse_heldout") - values(
        res, "classic", "decoder_mse_heldout"
    )
    return mean_ci(d, level)


@dataclass(frozen=True)
class Checkpoint:
    """One config at one checkpoint of training: accuracy (%), its paired difference
    from the same seeds' untrained encoder (step 0) and from raw pixels (points), and
    the effective rank's difference from step 0."""

    config: str
    step: int
    accuracy: Interval
    vs_random: Interval
    vs_raw: Interval
    rank_vs_random: Interval

    def line(self, label: str) -> str:
        return (
            f"{label:13s} step {self.step:5d}: accuracy {self.accuracy}%; vs random "
            f"{self.vs_random} points ({better_or_worse(self.vs_random)}); vs raw "
            f"pixels {better_or_worse(self.vs_raw)}; effective rank vs random "
            f"{self.rank_vs_random}"
        )


def mnist_checkpoints(res: Results, configs: Sequence[str]) -> list[Checkpoint]:
    """Every config at every checkpoint after step 0, judged against its own untrained
    encoder and against raw pixels (paired over seeds)."""
    steps = res["checkpoints"]["steps"]
    curves = checkpoint_curves(res, configs)
    raw = 100 * baseline(res, "raw_pixels_acc")
    out = []
    for c in configs:
        a, r = 100 * curves[c]["probe_acc_heldout"], curves[c]["effective_rank_heldout"]
        for j in range(1, len(steps)):
            out.append(
                Checkpoint(
                    c,
                    steps[j],
                    mean_ci(a[:, j]),
                    mean_ci(a[:, j] - a[:, 0]),
                    mean_ci(a[:, j] - raw[: len(a)]),
                    mean_ci(r[:, j] - r[:, 0]),
                )
            )
    return out


def first_better_step(points: Sequence[Checkpoint], config: str) -> int | None:
    """The first checkpoint at which ``config`` beats its own untrained encoder (None:
    at no checkpoint)."""
    return next(
        (p.step for p in points if p.config == config and p.vs_random.low > 0), None
    )


def late_change(res: Results, config: str) -> Interval:
    """Paired change of held-out accuracy (points) between the last two checkpoints."""
    a = 100 * checkpoint_curves(res, [config])[config]["probe_acc_heldout"]
    return mean_ci(a[:, -1] - a[:, -2])


def mnist_intervals(
    res: Results, labels: Mapping[str, str]
) -> dict[str, tuple[Interval, bool]]:
    """The paired differences behind chapter 6's verdict words, by claim: (interval
    over seeds, True when lower is better: the decoder's MSE). The comparisons, the
    decoder, each checkpoint against the untrained encoder and raw pixels, the gap
    between the JEPAs at each earlier checkpoint and the change over the last stretch."""
    out = {k: (iv, False) for k, iv in mnist_comparisons(res, labels).items()}
    decoder = f"{labels['expressive']} - {labels['classic']}, decoder MSE"
    out[decoder] = (decoder_gain(res), True)
    for p in mnist_checkpoints(res, list(labels)):
        name = f"{labels[p.config]} at step {p.step}"
        out[f"{name} - random encoder"] = (p.vs_random, False)
        out[f"{name} - raw pixels"] = (p.vs_raw, False)
    steps = res["checkpoints"]["steps"]
    gap = f"{labels['expressive']} - {labels['classic']}"
    for s, iv in checkpoint_gaps(res, labels).items():
        if s != steps[-1]:  # the last checkpoint is the comparison above
            out[f"{gap} at step {s}"] = (iv, False)
    for c, name in labels.items():
        out[f"{name} from step {steps[-2]} to {steps[-1]}"] = (
            late_change(res, c),
            False,
        )
    return out


def _difference_word(iv: Interval, lower: bool) -> str:
    return lower_or_higher(iv) if lower else better_or_worse(iv)


def mnist_verdicts(res: Results, labels: Mapping[str, str]) -> dict[str, str]:
    """Every verdict word chapter 6 prints, by claim: the words of ``mnist_intervals``
    and the first checkpoint that beats the untrained encoder."""
    out = {
        k: _difference_word(iv, lower)
        for k, (iv, lower) in mnist_intervals(res, labels).items()
    }
    points = mnist_checkpoints(res, list(labels))
    for c, name in labels.items():
        first = first_better_step(points, c)
        out[f"{name} first beats its untrained encoder"] = (
            f"from step {first}" if first is not None else "at no checkpoint"
        )
    return out


def mnist_holm(
    res: Results, labels: Mapping[str, str], level: float = 0.95
) -> dict[str, tuple[str, str]]:
    """Chapter 6's differences corrected as one family (``verdicts.holm_family`` over
    every interval of ``mnist_intervals`` against 0): a word that claims a difference
    survives only where Holm keeps it, else "no difference". Returns claim -> (word
    alone, word after Holm)."""
    ivs = mnist_intervals(res, labels)
    family = mnist_family(res, labels)
    fixed = holm_family({k: tests["difference"] for k, tests in family.items()}, level)
    after = {v: k for k, v in LEDGER_WORD.items()}
    out = {}
    for k, (iv, lower) in ivs.items():
        alone = _difference_word(iv, lower)
        out[k] = (alone, after.get(fixed[k].verdict, alone))  # untested: its own word
    return out


#: Chapter 6's words for a difference "first - second", as the ledger's directions
#: (the claim: the first is better).
LEDGER_WORD = {"better": "holds", "worse": "reversed", "no difference": "does not hold"}


def mnist_family(
    res: Results, labels: Mapping[str, str]
) -> dict[str, dict[str, Comparison]]:
    """Chapter 6's differences as a family of claims "the first is better" (claim ->
    {"difference": its test against 0}; for the decoder's MSE, lower is better): the
    form ``verdicts.holm_claims`` and ``ledger.family_claims`` take."""
    out = {}
    for k, (iv, lower) in mnist_intervals(res, labels).items():
        w = word(side(iv, 0.0), upward=not lower)
        out[k] = {"difference": Comparison(k, iv, w, 0.0, upward=not lower)}
    return out


def checkpoint_gaps(res: Results, labels: Mapping[str, str]) -> dict[int, Interval]:
    """Paired accuracy gap BiJEPA - classic JEPA (points) at every checkpoint after
    step 0 (where both are the same untrained encoder): {step: interval over seeds}."""
    a = checkpoint_curves(res, list(labels))
    acc = {c: 100 * a[c]["probe_acc_heldout"] for c in labels}
    steps = res["checkpoints"]["steps"]
    return {
        s: mean_ci(acc["expressive"][:, j] - acc["classic"][:, j])
        for j, s in enumerate(steps)
        if s > 0
    }


def steps_to_epochs(steps: int, n: int, batch_size: int = 256) -> int:
    """Whole epochs over ``n`` examples at ``batch_size`` that come closest to ``steps``
    optimiser steps from above (a read-out budget given in steps, run in epochs)."""
    per_epoch = -(-n // batch_size)
    return max(1, -(-steps // per_epoch))


@dataclass(frozen=True)
class StepBudget:
    """One read-out budget of chapter 6 in optimiser steps, judged on a validation split:
    ``value`` at ``steps`` and ``doubled`` at twice as many (accuracy as a fraction).
    The rule: a budget *converges* when doubling it changes validation accuracy by less
    than one point."""

    name: str
    steps: int
    value: float
    doubled: float

    @property
    def gain(self) -> float:
        """Points of accuracy that doubling the budget adds."""
        return 100 * (self.doubled - self.value)

    @property
    def converged(self) -> bool:
        return bool(abs(self.gain) < 1)

    def line(self, label: str) -> str:
        word = "converged" if self.converged else "not converged"
        return (
            f"{label:13s} probe, {self.name}: {self.steps:,} steps "
            f"{100 * self.value:.2f}%, twice as many {100 * self.doubled:.2f}% "
            f"({self.gain:+.2f} points: {word})"
        )


def step_budgets(
    curve: Mapping[int, float], n: int, budgets: Mapping[str, int], batch_size=256
) -> list[StepBudget]:
    """Read a probe's validation-accuracy curve ({epochs over ``n`` examples: accuracy})
    at each named budget in steps and at twice it (both rounded up to whole epochs,
    ``steps_to_epochs``; the epochs must have been recorded)."""
    per_epoch = -(-n // batch_size)
    out = []
    for name, steps in budgets.items():
        e = steps_to_epochs(steps, n, batch_size)
        e2 = steps_to_epochs(2 * steps, n, batch_size)
        missing = [k for k in (e, e2) if k not in curve]
        if missing:
            raise ValueError(
                f"curve has no value at epochs {missing} (budget {name!r})"
            )
        out.append(StepBudget(name, e * per_epoch, curve[e], curve[e2]))
    return out


# -------------------------------------------------------- chapter 8: the paper's claims
@dataclass(frozen=True)
class Claim:
    """A claim of the paper with its verdict and the evidence printed beside it.

    tests: test name -> (per-seed values, null); the claim's side of each test is
    "mean above null". Each test's outcome is where its interval lies ("above",
    "below" or "includes" the null; under Holm's correction "includes" unless its
    adjusted p-value is below 1 - level). rule: the outcomes -> verdict.
    """

    text: str
    verdict: str
    evidence: str
    tests: dict[str, tuple[np.ndarray, float]]
    rule: Callable[[Mapping[str, str]], str]
    log: frozenset[str] = frozenset()  # tests whose values are logs of positive ratios
    diverged: int = 0  # runs that diverged: the claim holds whatever its test says


def _log_ratio(res: Results, a: str, b: str, key: str) -> np.ndarray:
    return np.log(values(res, a, key)) - np.log(values(res, b, key))


def _all_or_some(ok: Mapping[str, str]) -> str:
    """``verdicts.verdict``'s words from the tests' outcomes: "depends" only when one
    measure (probe, task) says yes and another does not, none saying the reverse."""
    above = [o == "above" for o in ok.values()]
    if all(above):
        return "holds"
    if all(o == "below" for o in ok.values()):
        return "reversed"
    return "depends" if any(above) and "below" not in ok.values() else "does not hold"


def _one_test(ok: Mapping[str, str]) -> str:
    """A claim resting on one test: ``verdicts.word`` of its outcome."""
    (outcome,) = ok.values()
    return word(outcome)


def passes(tests: Mapping[str, tuple[np.ndarray, float]], level: float):
    """test name -> where its ``level`` interval lies against its null ("above",
    "below", "includes"; ``verdicts.side``)."""
    return {k: side(mean_ci(v, level), null) for k, (v, null) in tests.items()}


def paper_claims(res: Mapping[str, Results], level: float = 0.95) -> list[Claim]:
    """The eight claims of the paper that chapter 8 judges, from the three reproductions
    res = {"sine": ..., "lorenz": ..., "mnist": ...}, with each claim's rule:

    - "X beats Y" on held-out Protocol B: the paired error ratio Y / X (t-interval on
      the log-ratio) above 1 with the Adam probe and with least squares: holds; with one
      probe only: depends; otherwise does not hold.
    - explosion: the book's one rule (``verdicts.explodes``): a diverged seed, or the
      norm growth from a quarter of training to its end above tenfold: holds; below
      tenfold: reversed (the embeddings stay bounded).
    - the loss rebounds: the loss of the last 100 steps / steps 400-600 above 1.
    - smoother loss: the forward-loss roughness ratio classic / BiJEPA above 1 on sine
      and Lorenz: holds; on one: depends.
    - MNIST: the paired accuracy difference above 0: holds.

    Why so long: one block per claim of the paper, each with its measure and rule, read
    top to bottom like chapter 8's list.
    """
    sine, lorenz, mnist = res["sine"], res["lorenz"], res["mnist"]

    def iv(v: np.ndarray) -> Interval:
        return mean_ci(v, level)

    def both_probes(exp: Results, worse: str, better: str, text: str) -> Claim:
        r = {
            p: paired_ratio_ci(
                values(exp, worse, f"B_{p}_heldout"),
                values(exp, better, f"B_{p}_heldout"),
                level,
            )
            for p in ("adam", "lstsq")
        }
        tests = {
            name: (_log_ratio(exp, worse, better, f"B_{p}_heldout"), 0.0)
            for name, p in (("Adam", "adam"), ("least sq.", "lstsq"))
        }
        evidence = (
            f"error ratio {worse}/{better}: Adam probe {r['adam']}, "
            f"least squares {r['lstsq']}"
        )
        return Claim(
            text,
            _all_or_some(passes(tests, level)),
            evidence,
            tests,
            _all_or_some,
            frozenset(tests),
        )

    claims = [
        both_probes(
            sine,
            "classic",
            "expressive",
            "BiJEPA beats classic JEPA on Protocol B, sine (0.013 vs 0.052)",
        ),
        both_probes(
            lorenz,
            "classic",
            "expressive",
            "BiJEPA beats classic JEPA on Protocol B, Lorenz (0.025 vs 0.094)",
        ),
        both_probes(
            sine,
            "expressive",
            "unconstrained",
            "Without constraints the predictor error is lowest "
            "(0.0068 vs 0.0132 expressive)",
        ),
    ]
    rebound = values(sine, "unconstrained", "loss_last100_total") / values(
        sine, "unconstrained", "loss_early_total"
    )
    growth = values(sine, "unconstrained", "norm_growth_from_quarter")
    diverged = sum(
        d is not None for d in sine["configs"]["unconstrained"]["diverged_at"]
    )
    boom = explodes("", growth, diverged)

    def explosion(ok: Mapping[str, str]) -> str:
        return "holds" if diverged > 0 else _one_test(ok)

    tests = {"norm growth > 10": (np.log(growth), np.log(EXPLOSION_LIMIT))}
    claims.append(
        Claim(
            "Unconstrained BiJEPA explodes: the latent norms grow unbounded",
            explosion(passes(tests, level)),
            f"norm growth from 1/4 of training to the end {boom.interval} "
            f"(explodes above {EXPLOSION_LIMIT:g}x); "
            f"{diverged} of {len(sine['seeds'])} seeds diverged",
            tests,
            explosion,
            frozenset(tests),
            diverged,
        )
    )
    tests = {"loss rebound > 1": (np.log(rebound), 0.0)}
    claims.append(
        Claim(
            "Unconstrained BiJEPA's loss rebounds after its early minimum "
            "(0.002 -> 0.019)",
            _one_test(passes(tests, level)),
            f"loss of the last 100 steps / steps 400-600 {geometric_mean_ci(rebound)}",
            tests,
            _one_test,
            frozenset(tests),
        )
    )
    claims.append(
        both_probes(
            sine,
            "restrictive",
            "expressive",
            "The unit sphere hurts Protocol B (0.078 vs 0.013)",
        )
    )
    rough = {
        name: paired_ratio_ci(
            values(exp, "classic", "roughness_fwd"),
            values(exp, "expressive", "roughness_fwd"),
            level,
        )
        for name, exp in (("sine", sine), ("Lorenz", lorenz))
    }
    tests = {
        name: (_log_ratio(exp, "classic", "expressive", "roughness_fwd"), 0.0)
        for name, exp in (("sine", sine), ("Lorenz", lorenz))
    }
    claims.append(
        Claim(
            "BiJEPA's training loss is smoother than classic JEPA's (sine, Lorenz)",
            _all_or_some(passes(tests, level)),
            f"forward-loss roughness ({ROUGHNESS_WINDOW}-step moving average) ratio "
            f"classic/BiJEPA: sine {rough['sine']}, "
            f"Lorenz {rough['Lorenz']}",
            tests,
            _all_or_some,
            frozenset(tests),
        )
    )
    gain = 100 * (
        values(mnist, "expressive", "probe_acc_heldout")
        - values(mnist, "classic", "probe_acc_heldout")
    )
    tests = {"accuracy gain": (gain, 0.0)}
    claims.append(
        Claim(
            "MNIST: BiJEPA's probe is more accurate than classic's "
            f"({mnist['environment']['mnist_source']} here)",
            _one_test(passes(tests, level)),
            f"paired difference {iv(gain)} points",
            tests,
            _one_test,
        )
    )
    return claims


def paper_family(
    claims: Sequence[Claim], level: float = 0.95
) -> dict[str, dict[str, Comparison]]:
    """Chapter 8's claims (``paper_claims``) as a family of tests (claim -> {test:
    Comparison}), the form ``ledger.family_claims`` takes: a test on logs becomes the
    geometric interval of the ratio against exp(null); a claim with diverged runs
    holds without its test (null None), as the explosion rule says."""
    out = {}
    for c in claims:
        tests = {}
        for name, (v, null) in c.tests.items():
            iv = mean_ci(v, level)
            if name in c.log:
                iv = Interval(
                    float(np.exp(iv.mean)), iv.std, float(np.exp(iv.low)),
                    float(np.exp(iv.high)), iv.n, iv.level, log=True,
                )  # fmt: skip
                null = float(np.exp(null))
            w = word(side(iv, null))
            if c.diverged:
                w, null = "holds", None
            tests[name] = Comparison(f"{c.text}: {name}", iv, w, null)
        out[c.text] = tests
    return out


@dataclass(frozen=True)
class HolmCheck:
    """Holm's step-down correction over every elementary test of a list of claims.

    rows: one per test (claim, test, p, adjusted p, passes at 1 - level?); verdicts: each
    claim's rule applied again, a test that does not survive the correction reading
    "includes"."""

    rows: list[list[str]]
    verdicts: list[str]


def holm_check(claims: Sequence[Claim], level: float = 0.95) -> HolmCheck:
    """Two-sided one-sample t-tests (the same test as each interval: p < 1 - level
    exactly when the interval excludes the null), adjusted with ``stats.holm``; a test
    passes when its adjusted p is below 1 - level and its mean lies on the claim's side
    (a test whose adjusted p is below 1 - level with its mean on the other side reads
    "below" for the claim's rule)."""
    flat = [
        (i, name, v, null)
        for i, c in enumerate(claims)
        for name, (v, null) in c.tests.items()
    ]
    p_raw = np.array([t_pvalue(v, null) for _, _, v, null in flat])
    p_adj = holm(p_raw)
    alpha = 1 - level
    outcome = [
        ("above" if np.mean(v) > null else "below") if p < alpha else "includes"
        for p, (_, _, v, null) in zip(p_adj, flat)
    ]
    ok = [o == "above" for o in outcome]
    rows = [
        [
            claims[i].text[:48] + "...",
            name,
            f"{p_raw[j]:.2g}",
            f"{p_adj[j]:.2g}",
            "yes" if ok[j] else "no (below)" if outcome[j] == "below" else "no",
        ]
        for j, (i, name, _, _) in enumerate(flat)
    ]
    verdicts = []
    for i, c in enumerate(claims):
        got = {name: outcome[j] for j, (k, name, _, _) in enumerate(flat) if k == i}
        verdicts.append(c.rule(got))
    return HolmCheck(rows, verdicts)


@dataclass(frozen=True)
class RawDataRow:
    """The best JEPA read-out of an experiment against one baseline that learns nothing
    (or, on MNIST, nothing from the JEPA's objective), and its ``test``: errors by the
    paired ratio baseline / JEPA against 1 (on the log scale), accuracies by the
    paired difference JEPA - baseline in points against 0; its word is *holds* when the
    interval lies on the JEPA's side, *reversed* on the baseline's."""

    experiment: str
    readout: str
    jepa: np.ndarray
    baseline: str
    base: np.ndarray
    test: Comparison

    @property
    def claim(self) -> str:
        """The claim's name in the ledger ("sine: JEPA beats sinusoid fit")."""
        return f"{self.experiment}: JEPA beats {self.baseline}"

    @property
    def word(self) -> str:
        return self.test.verdict

    def cells(self) -> list[str]:
        """The row of chapter 8's table: experiment, read-out, mean ± std, baseline,
        mean ± std, the test's interval and its word (accuracies in %)."""

        halves = EXPERIMENTS[self.experiment].kind == "halves"  # accuracies
        scale, digits = (100, 2) if halves else (1, 4)
        what = "JEPA - baseline, points" if halves else "baseline / JEPA"
        return [
            self.experiment,
            self.readout,
            mean_std(scale * self.jepa, digits),
            self.baseline,
            mean_std(scale * self.base, digits),
            f"{what}: {fmt_interval(self.test.interval)}",
            self.word,
        ]


RAW_DATA_BASELINES = (
    ("sine", "lstsq_context", "lstsq context"),
    ("sine", "sinusoid_fit", "sinusoid fit"),
    ("lorenz", "linear_extrapolation", "linear extrapolation"),
    ("lorenz", "lstsq_context", "lstsq context"),
    ("mnist", "raw_pixels_acc", "raw left-half pixels"),
    ("mnist", "random_encoder_acc", "random-init encoder"),
)


def best_config(res: Results, key: str, lower: bool = True) -> str:
    """The config with the best mean of ``key`` over seeds (lowest by default)."""
    means = {
        c: values(res, c, key).mean()
        for c in res["configs"]
        if len(values(res, c, key))
    }
    return (min if lower else max)(means, key=means.get)


def raw_data_comparison(
    res: Mapping[str, Results], level: float = 0.95
) -> list[RawDataRow]:
    """Does the best JEPA read-out beat the raw data? Forecasts: the config with the
    lowest held-out least-squares Protocol B error against each forecasting baseline,
    by the paired error ratio baseline / JEPA against 1. MNIST: the most accurate
    linear probe against raw pixels and the untrained encoder, by the paired
    difference in points against 0 (``verdicts.beats``; see ``RawDataRow``)."""
    out = []
    for exp, key, name in RAW_DATA_BASELINES:
        r = res[exp]
        if exp == "mnist":
            c = best_config(r, "probe_acc_heldout", lower=False)
            jepa, readout = values(r, c, "probe_acc_heldout"), "linear probe acc."
        else:
            c = best_config(r, "B_lstsq_heldout")
            jepa, readout = values(r, c, "B_lstsq_heldout"), "Protocol B least sq."
        b = baseline(r, key)
        scale = 100.0 if exp == "mnist" else 1.0  # accuracies in points
        scores = {"JEPA": scale * jepa, name: scale * b}
        test = beats(scores, "JEPA", [name], exp == "mnist", level)[name]
        label = f"{r['configs'][c]['label']}, {readout}"
        out.append(RawDataRow(exp, label, jepa, name, b, test))
    return out


def raw_data_family(
    res: Mapping[str, Results], level: float = 0.95
) -> dict[str, dict[str, Comparison]]:
    """Chapter 8's own claims, "the best JEPA read-out beats the raw data", as a
    family of tests (claim -> {test: Comparison}) for ``ledger.family_claims``."""
    return {r.claim: {r.test.claim: r.test} for r in raw_data_comparison(res, level)}


def claim_verdicts(res: Mapping[str, Results], level: float = 0.95) -> dict[str, str]:
    """Every verdict word chapter 8 prints, by claim: each claim of ``paper_claims``,
    the same claim under Holm's correction (key suffixed " (Holm)"), and the word of
    each raw-data comparison (``raw_data_comparison``)."""
    claims = paper_claims(res, level)
    out = {c.text: c.verdict for c in claims}
    holm_words = holm_check(claims, level).verdicts
    out |= {f"{c.text} (Holm)": w for c, w in zip(claims, holm_words)}
    for r in raw_data_comparison(res, level):
        out[r.claim] = r.word
    return out


# ---------------------------------------------------------- verdicts on other seeds
def seed_split_table(
    runs: Mapping[str, Mapping[str, str]], fallback: str
) -> list[list[str]]:
    """Compare the verdict words of several runs (run name -> {claim: word}), claim by
    claim: one row per claim (claim, each run's word, conclusion). The conclusion keeps
    a word every run agrees on; where they differ, the claim is not robust to which
    seeds ran and the conclusion is ``fallback`` ("does not hold", "not resolved")."""
    names = list(runs)
    if len(names) < 2:
        raise ValueError(f"runs must hold at least two runs, got {names}")
    rows = []
    for claim in runs[names[0]]:
        words = [runs[n].get(claim, "–") for n in names]
        rows.append([claim, *words, words[0] if len(set(words)) == 1 else fallback])
    return rows
