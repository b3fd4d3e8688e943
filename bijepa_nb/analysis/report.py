"""Tables for the book: numbers computed by cells, rendered as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..experiments import registry
from ..experiments.registry import PAPER_MEASURES, PAPER_METRICS, VARIANTS
from .results import baseline, values
from .stats import (
    fmt,
    fmt_interval,
    geometric_mean_ci,
    mean_ci,
    mean_std,
    paired_ratio_ci,
    sig,
)
from .verdicts import Comparison, holm_claims, replicate, verdict


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4
):
    """An IPython Markdown table (plain text outside IPython)."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:  # pragma: no cover
        return text


def interval(values: Sequence[float], digits: int = 4, log: bool = False) -> str:
    """'mean [low, high]': the mean over seeds and its 95% t-interval (``stats.mean_ci``),
    or the single value when there is one seed. ``log``: for a positive quantity (an
    MSE, a ratio), the geometric mean with its log-scale interval
    (``stats.geometric_mean_ci``, which never reaches below 0), 3 significant digits."""

    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return fmt(float(v[0]), digits)
    if log:
        return fmt_interval(geometric_mean_ci(v))
    iv = mean_ci(v)
    return f"{fmt(iv.mean, digits)} [{fmt(iv.low, digits)}, {fmt(iv.high, digits)}]"


def paper_table(
    experiment: str,
    results: Mapping[str, Sequence[Mapping[str, float]]],
    extra: Mapping[str, str] | None = None,
    digits: int = 4,
    log: bool = False,
):
    """The paper's table beside ours: one row per variant of ``results``.

    results: variant name -> one dict of metrics per seed, holding at least the keys the
    paper reports for ``experiment`` under our keys (``registry.PAPER_MEASURES``: e.g.
    train_loss, A_adam_probeset, B_adam_probeset). For
    each of those keys the table shows the paper's single run (read from the registry)
    and ours as "mean [95% interval over seeds]"; ``extra`` (column header -> metric
    key) adds columns of ours alone (held-out scores, other probes). ``log``: every
    "ours" cell as a geometric mean with its log-scale interval (``interval``).
    """

    exp = registry.experiment(experiment)
    if not results:
        raise ValueError("results must hold at least one variant")
    extra = dict(extra or {})
    for name, per_seed in results.items():
        if name not in exp.paper:
            raise ValueError(
                f"results: variant {name!r} is not in the paper's table of "
                f"{experiment!r} (one of {', '.join(map(repr, exp.paper))})"
            )
        if not per_seed:
            raise ValueError(f"results[{name!r}] holds no seed")
    keys = list(next(iter(exp.paper.values())))
    header = ["variant"]
    for k in keys:
        label = PAPER_METRICS.get(k, k)
        header += [f"{label}, paper", f"{label}, ours"]
    header += list(extra)
    rows = []
    for name, per_seed in results.items():
        row: list[Any] = [VARIANTS[name].label]
        for k in keys:
            ours = [r[PAPER_MEASURES[k]] for r in per_seed]
            row += [exp.paper[name][k], interval(ours, digits, log)]
        row += [
            interval([r[key] for r in per_seed], digits, log) for key in extra.values()
        ]
        rows.append(row)
    return markdown_table(header, rows, digits)


# --- chapters 01-03


def probe_table(
    scores: Mapping[str, Mapping[str, float]], baselines: Mapping[str, float]
):
    """One run's forecasting errors, as chapter 1 reads them: a row per protocol (A, B)
    with the Adam probe on its own probe set (the paper's number), the same probe on the
    held-out test set and least squares on the held-out set (``probes.evaluate``'s keys
    ``adam_probeset``, ``adam_heldout``, ``lstsq_heldout``); then a row per reference value of
    ``baselines`` (name -> held-out MSE, e.g. predicting the mean)."""
    header = ["probe", "probe set (paper-style)", "held-out test"]
    header.append("least squares, held-out")
    rows: list[list[Any]] = [
        [
            f"Protocol {p}",
            scores[p]["adam_probeset"],
            scores[p]["adam_heldout"],
            scores[p]["lstsq_heldout"],
        ]
        for p in ("A", "B")
    ]
    rows += [[name, "", value, ""] for name, value in baselines.items()]
    return markdown_table(header, rows)


def interval_table(
    results: Mapping[str, Sequence[Mapping[str, float]]],
    columns: Mapping[str, str],
    label: str = "method",
    digits: int = 4,
    log: bool = False,
):
    """Means over seeds with their 95% intervals: a row per name of ``results`` (name ->
    one dict of metrics per seed), a column per header of ``columns`` (header -> metric
    key), each cell "mean [low, high]" (``interval``). ``log``: for positive
    quantities, every cell a geometric mean with its log-scale interval."""
    if not results:
        raise ValueError("results must hold at least one name")
    rows = [
        [
            name,
            *(
                interval([m[key] for m in per_seed], digits, log)
                for key in columns.values()
            ),
        ]
        for name, per_seed in results.items()
    ]
    return markdown_table([label, *columns], rows, digits)


def comparison_table(groups: Mapping[str, Mapping[str, Any]], digits: int = 3):
    """Verdicts as a table: a row per ``verdicts.Comparison`` of ``groups`` (group -> key ->
    Comparison, e.g. ``claims_by_metric``'s result): the group (the claim, or what
    measures it), the ratio the claim is about, its geometric mean [95% interval] over
    seeds, and the verdict word."""
    rows = [
        [
            group,
            c.claim,
            f"{c.interval.mean:.{digits}g} [{c.interval.low:.{digits}g}, "
            f"{c.interval.high:.{digits}g}]",
            c.verdict,
        ]
        for group, comps in groups.items()
        for c in comps.values()
    ]
    return markdown_table(["claim", "ratio", "mean [95% interval]", "verdict"], rows)


def replication_table(
    verdicts: Mapping[str, str], seeds: Sequence[int], path, save=None
):
    """This run's verdict words beside those a rerun on other seeds saved in ``path``
    (``verdicts.replicate``, which also writes this run's words to ``save`` when given):
    how many agree, then a row per claim with both words and the conclusion that both
    support. Without a saved rerun on other seeds, a sentence that says so."""
    import json
    from pathlib import Path

    path = Path(path)
    other = json.loads(path.read_text())["seeds"] if path.is_file() else None
    rows = replicate(verdicts, seeds, path, save)
    if rows is None:
        text = f"No rerun on other seeds in `{path}`: nothing to compare."
    else:
        agree = sum(r[1] == r[2] for r in rows)
        header = ["claim", f"seeds {list(seeds)}", f"seeds {other}", "conclusion"]
        table = markdown_table(header, rows)
        text = f"{agree} of {len(rows)} verdicts agree.\n\n" + getattr(
            table, "data", table
        )
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:  # pragma: no cover
        return text


# --- chapter 10


def paper_vs_best_table(comparisons: Mapping[str, Any]):
    """A Markdown table of ``maps.paper_against_best`` results, one row per map: the best
    cell, both cells' geometric means [95% interval], the paired ratio paper / best and
    the word ("beaten" / "on par")."""
    rows = [
        [
            name,
            f"α={c.best[0]:g}, τ={c.best[1]:g}",
            str(c.best_interval),
            str(c.paper_interval),
            str(c.ratio),
            c.word,
        ]
        for name, c in comparisons.items()
    ]
    level = round(100 * next(iter(comparisons.values())).ratio.level)
    return markdown_table(
        [
            "map",
            "best cell",
            f"best: geometric mean [{level}% CI]",
            "paper's cell",
            "ratio paper / best",
            "paper's choice",
        ],
        rows,
    )


def robustness_table(rows: Sequence[Sequence[str]], moved_only: bool = True):
    """A Markdown table of ``verdicts.robust_words`` rows (claim, word on all seeds, splits
    that agree, splits that differ, conclusion); with ``moved_only`` just the claims whose
    word changed on some split."""
    keep = [r for r in rows if r[3]] if moved_only else list(rows)
    return markdown_table(
        ["claim", "all seeds", "same word", "differs on", "conclusion"], keep
    )


def conclusions_table(
    rows: Sequence[Sequence[str]], names: Sequence[str], claims: Sequence[str]
):
    """A Markdown table of chosen ``verdicts.robust_words`` conclusions: one row per map in
    ``names``, one column per claim in ``claims`` (the claim ``f"{name}: {claim}"``).
    A cell gives the conclusion, and where some seed subset disagreed, the word on all
    seeds and on how many subsets it was the same, e.g. "does not hold (all seeds:
    holds; same on 5 of 7)"."""
    found = {r[0]: r for r in rows}
    out = []
    for name in names:
        row = [name]
        for claim in claims:
            r = found.get(f"{name}: {claim}")
            if r is None:
                row.append("–")
            elif r[3]:
                row.append(f"{r[4]} (all seeds: {r[1]}; same on {r[2]})")
            else:
                row.append(r[4])
        out.append(row)
    return markdown_table(["map", *claims], out)


# --- chapters 04 and 05
def ratio_verdicts(
    claims: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    measures: Sequence[str],
):
    """Claims "W beats L" on errors, each judged by the book's rule over seeds.

    claims: claim -> {measure: (errors of L per seed, errors of W per seed)}, the seeds
    in the same order on both sides. For each measure the paired geometric-mean ratio
    L / W with its 95% interval (``stats.paired_ratio_ci``; above 1 when W is better);
    the claim's verdict is ``verdicts.verdict`` over its measures ("holds" when every
    interval lies above 1). Returns (a Markdown table with one row per claim and one
    column per name in ``measures``, "–" where a claim lacks it; {claim: verdict}).
    """

    rows, words = [], {}
    for claim, tests in ratio_comparisons(claims, measures).items():
        ivs = {m: t.interval for m, t in tests.items()}
        words[claim] = verdict(list(ivs.values()))
        cells = [str(ivs[m]) if m in ivs else "–" for m in measures]
        rows.append([claim, *cells, words[claim]])
    header = ["claim", *(f"{m}: ratio [95% interval]" for m in measures), "verdict"]
    return markdown_table(header, rows), words


def ratio_comparisons(
    claims: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    measures: Sequence[str],
) -> dict[str, dict[str, Comparison]]:
    """The tests behind ``ratio_verdicts``: claim -> {measure: Comparison of the paired
    ratio L / W against 1}, in the order of ``measures``."""
    out = {}
    for claim, by_measure in claims.items():
        unknown = set(by_measure) - set(measures)
        if unknown or not by_measure:
            raise ValueError(
                f"claims[{claim!r}] must hold some of the measures {list(measures)}, "
                f"got {sorted(by_measure)}"
            )
        out[claim] = {}
        for m in measures:
            if m in by_measure:
                iv = paired_ratio_ci(*by_measure[m])
                out[claim][m] = Comparison(f"{claim}, {m}", iv, verdict([iv]), 1.0)
    return out


def holm_table(claims: Mapping[str, Mapping[str, Comparison]], level: float = 0.95):
    """A chapter's claims corrected as one family (``verdicts.holm_claims``): a count
    line, then a Markdown table of each claim, its number of tests, its word alone and
    after Holm's correction. Returns (line, table, {claim: word after Holm})."""
    judged = holm_claims(claims, level)
    tests = sum(n for _, _, n in judged.values())
    kept = sum(a == b for a, b, _ in judged.values())
    line = (
        f"Holm's correction over {tests} tests of {len(judged)} claims: "
        f"{kept} of {len(judged)} claims keep their word"
    )
    rows = [[c, str(n), a, b] for c, (a, b, n) in judged.items()]
    table = markdown_table(["claim", "tests", "alone", "after Holm"], rows)
    return line, table, {c: b for c, (_, b, _) in judged.items()}


def replication_report(
    verdicts: Mapping[str, str],
    seeds: Sequence[int],
    path: str,
    save: str = "",
    quick: bool = False,
):
    """This run's verdict words beside those of a rerun on other seeds.

    ``verdicts.replicate`` reads the rerun from ``path`` (and, with ``save``, writes this
    run's words there for the next comparison). Returns (a one-line summary; a Markdown
    table of every claim: this run, the rerun and the conclusion, the shared word or
    "not resolved" where the two differ), the table None when there is nothing to
    compare: quick mode, no file, or a file with the same seeds.
    """

    rows = replicate(verdicts, seeds, path, save=save or None)
    if quick:
        return "quick mode: a smoke run, not compared with the saved rerun", None
    if not rows:
        return f"no rerun on other seeds in {path}: nothing to compare", None
    flipped = sum(r[1] != r[2] for r in rows)
    header = ["claim", f"seeds {list(seeds)}", "the rerun", "conclusion"]
    summary = f"{len(rows) - flipped} of {len(rows)} verdicts agree with the rerun"
    return summary, markdown_table(header, rows)


def agreement_table(
    pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    names: tuple[str, str] = ("ensemble", "separate"),
):
    """How two computations of the same runs agree, run by run.

    pairs: metric -> (values of the first computation per run, values of the second),
    the runs in the same order. Per metric: the median and largest |first / second - 1|
    and the paired geometric-mean ratio first / second with its 95% interval
    (``stats.paired_ratio_ci``). Returns (the Markdown table; {metric: (|first / second
    - 1| per run [runs], Interval)}).
    """

    a, b = names
    rows, out = [], {}
    for name, (first, second) in pairs.items():
        first, second = np.asarray(first, float), np.asarray(second, float)
        if first.shape != second.shape or first.ndim != 1 or len(first) < 2:
            raise ValueError(
                f"pairs[{name!r}]: two equally long lists of at least 2 runs needed, "
                f"got {first.shape} and {second.shape}"
            )
        rel = np.abs(first / second - 1)
        out[name] = (rel, paired_ratio_ci(first, second))
        rows.append(
            [name, f"{np.median(rel):.1%}", f"{rel.max():.1%}", str(out[name][1])]
        )
    header = [
        "metric, per run",
        f"median |{a} / {b} - 1|",
        "largest",
        f"geometric-mean ratio {a} / {b} [95% interval]",
    ]
    return markdown_table(header, rows), out


# --- chapters 06 and 08
def _interval_cell(v: Sequence[float], digits: int, level: float) -> str:
    """'mean [low, high]' over the finite values (the single value when n = 1)."""

    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 1:
        return fmt(float(v[0]), digits)
    iv = mean_ci(v, level)
    return f"{fmt(iv.mean, digits)} [{fmt(iv.low, digits)}, {fmt(iv.high, digits)}]"


#: The rows of the MNIST table below the two JEPAs: printed name -> (key of the
#: accuracy baseline, key of the decoder-MSE baseline or None) in a results file.
MNIST_BASELINE_ROWS = {
    "random encoder (untrained)": ("random_encoder_acc", "random_encoder_decoder_mse"),
    "raw left-half pixels": ("raw_pixels_acc", "raw_pixels_decoder_mse"),
    "supervised encoder (labels)": ("supervised_acc", None),
    "most frequent class / mean right half": ("chance_acc", "mean_right_half_mse"),
}


def mnist_table(res: Mapping[str, Any], level: float = 0.95):
    """The paper's Table 2 beside the MNIST reproduction ``res`` (a results file of
    ``bijepa_nb.experiments.reproduce``) and its baselines: held-out linear-probe accuracy (%) and
    decoder MSE as "mean [level interval over seeds]", the paper's single run beside
    each JEPA's. Chapters 6 and 8 both show it."""

    ci = f"[{100 * level:.0f}% CI]"
    rows = []
    for c, d in res["configs"].items():
        p = res["paper"][c]
        rows.append(
            [
                d["label"],
                fmt(100 * p["probe_acc"], 2),
                _interval_cell(100 * values(res, c, "probe_acc_heldout"), 2, level),
                fmt(p["decoder_mse"], 4),
                _interval_cell(values(res, c, "decoder_mse_heldout"), 4, level),
            ]
        )
    for name, (acc, mse) in MNIST_BASELINE_ROWS.items():
        mse_cell = _interval_cell(baseline(res, mse), 4, level) if mse else ""
        acc_cell = _interval_cell(100 * baseline(res, acc), 2, level)
        rows.append([name, "", acc_cell, "", mse_cell])
    header = [
        "",
        "probe acc. % (paper)",
        f"probe acc. % held-out {ci}",
        "decoder MSE (paper)",
        f"decoder MSE held-out {ci}",
    ]
    return markdown_table(header, rows)


#: Columns of ``forecast_table``: header -> (what, key): the paper's value of ``key``,
#: ours as mean ± std over seeds, or the interval of our mean ("95%": the level asked).
FORECAST_COLUMNS = {
    "train loss (paper: last batch, fwd)": ("paper", "train_loss"),
    "last batch, fwd (ours)": ("ours", "loss_final_fwd"),
    "mean of last 100, total (ours)": ("ours", "loss_last100_total"),
    "A (paper)": ("paper", "A"),
    "A probe set": ("ours", "A_adam_probeset"),
    "A held-out": ("ours", "A_adam_heldout"),
    "B (paper)": ("paper", "B"),
    "B probe set": ("ours", "B_adam_probeset"),
    "B held-out": ("ours", "B_adam_heldout"),
    "B held-out 95% CI, log scale": ("interval", "B_adam_heldout"),
    "B least sq. held-out": ("ours", "B_lstsq_heldout"),
}


def _range_cell(v: np.ndarray, level: float) -> str:
    """'low – high': the ``level`` interval of the mean ('–' for n < 2 or no spread),
    on the log scale for positive values (an MSE: the geometric mean's interval, which
    never reaches below 0), 3 significant digits."""

    if len(v) < 2 or np.ptp(v) == 0:
        return "–"
    c = geometric_mean_ci(v, level) if np.all(v > 0) else mean_ci(v, level)
    return f"{sig(c.low)} – {sig(c.high)}"


def forecast_table(
    res: Mapping[str, Any], baselines: Sequence[str], level: float = 0.95
):
    """The paper's Table 3 (sine) or Table 1 (Lorenz) beside a forecasting reproduction
    ``res``: every column of ``FORECAST_COLUMNS`` per config (ours as mean ± std over
    seeds, one column with the interval of the held-out Protocol B mean), then one row
    per baseline of ``baselines`` in the held-out Protocol B columns."""

    rows = []
    for c, d in res["configs"].items():
        row = [d["label"]]
        for what, key in FORECAST_COLUMNS.values():
            if what == "paper":
                row.append(fmt(res["paper"][c][key]))
            elif what == "ours":
                row.append(mean_std(values(res, c, key)))
            else:
                row.append(_range_cell(values(res, c, key), level))
        rows.append(row)
    for b in baselines:
        v = baseline(res, b)
        row = [f"baseline: {b.replace('_', ' ')}"] + [""] * len(FORECAST_COLUMNS)
        row[-3:-1] = [mean_std(v), _range_cell(v, level)]
        rows.append(row)
    header = [h.replace("95%", f"{100 * level:.0f}%") for h in FORECAST_COLUMNS]
    return markdown_table(["", *header], rows)
