"""The claim ledger: every claim of the paper that the book judges, as one entry each.

An entry states the claim, the measure and its rule, the paper's number of that measure
(one run) where the paper gives one, ours as a 95% interval over seeds, and two verdicts:

- *direction* (``verdicts.verdict`` on the interval against the measure's null value):
  "holds", "reversed" or "does not hold";
- *size*, where the paper states a number: "as the paper" when the paper's number lies
  inside our interval of the mean, else "larger" or "smaller" (ours than the paper's).

The paper's number comes from a single run, so it is also set against a 95% *prediction*
interval of one run (``stats.prediction_interval``): "a plausible run" when inside it.

The entries of one chapter form a family: ``holm`` is the direction again after Holm's
correction over that family (``verdicts.holm_family``), beside the raw one.

``findings`` builds the entries from the three saved reproductions
(``book/results/{sine,lorenz,mnist}.json``); ``findings_table`` and ``ledger_page`` render
them for the introduction and the ledger page, which ``python -m bijepa_nb.book --ledger``
writes and ``tests/test_ledger.py`` keeps current.

Every chapter's claims (chapters 2 to 12) are saved by the chapters that judge them, in
one schema (``CLAIMS_SCHEMA``, checked by ``check_claims``): ``save_claims`` writes a
chapter's entries to ``book/results/claims/<chapter>.json``, ``load_claims`` reads them
back, and ``own_claims_page`` renders one table per chapter for the second part of the
ledger page. Chapter 9 keeps its own files (``beyond_verdicts.json`` and
``beyond_replication.json``, written by ``beyond.save_idea_verdicts``), read here the
way its summary page reads them (``beyond.conclusions``).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import beyond
from .results import (
    LEDGER_WORD,
    mnist_family,
    mnist_verdicts,
    paper_claims,
    paper_family,
    raw_data_comparison,
    raw_data_family,
    subset,
    values,
)
from .stats import Interval, geometric_mean_ci, mean_ci, prediction_interval
from .verdicts import (
    EXPLOSION_LIMIT,
    UNRESOLVED,
    Comparison,
    combine,
    explodes,
    holm_claims,
    holm_family,
    rerun,
    side,
    size_word,
    verdict,
    word,
)

Results = Mapping[str, Any]

#: The reproductions the ledger reads, by experiment.
RESULT_FILES = ("sine", "lorenz", "mnist")


@dataclass(frozen=True)
class Entry:
    """One judged claim: see the module docstring. ``ratio``: the measure is a ratio of
    positive quantities (geometric intervals, null 1); otherwise a difference (null 0).
    ``diverged``: runs that became non-finite (the explosion rule: the claim holds);
    ``holm``: the direction after Holm's correction over the chapter's entries."""

    claim: str
    chapter: str
    measure: str
    paper: float | None
    ours: Interval
    one_run: Interval
    ratio: bool
    null: float
    halves: tuple[str, ...] = ()
    diverged: int = 0
    holm: str = ""

    @property
    def conclusion(self) -> str:
        """The direction where both halves of the seeds give it too, else "not
        resolved": a word that five other seeds cannot reproduce is not a finding."""
        if any(h != self.direction for h in self.halves):
            return UNRESOLVED
        return self.direction

    @property
    def direction(self) -> str:
        if self.diverged:
            return "holds"  # a diverged run exploded (verdicts.explodes)
        return verdict([self.ours], self.null)

    def comparison(self) -> Comparison:
        """The entry's direction as a ``verdicts.Comparison`` (for ``holm_family``)."""
        null = None if self.diverged else self.null
        return Comparison(self.claim, self.ours, self.direction, null)

    @property
    def size(self) -> str:
        if self.paper is None:
            return "–"
        return size_word(self.ours, self.paper)

    @property
    def paper_run(self) -> str:
        if self.paper is None:
            return "–"
        inside = self.one_run.low <= self.paper <= self.one_run.high
        return "a plausible run" if inside else "outside"


def load_results(folder: str | Path) -> dict[str, Results]:
    """The saved reproductions below ``folder`` (``book/results``), by experiment."""
    folder = Path(folder)
    missing = [n for n in RESULT_FILES if not (folder / f"{n}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: no {', '.join(m + '.json' for m in missing)}; they are written "
            "by python -m bijepa_nb.reproduce (see the appendix)"
        )
    return {n: json.loads((folder / f"{n}.json").read_text()) for n in RESULT_FILES}


def _ratio_entry(
    claim: str,
    chapter: str,
    measure: str,
    ratios: np.ndarray,
    paper: float | None = None,
    null: float = 1.0,
) -> Entry:
    """A measure that is a positive ratio per seed: geometric interval, log-scale
    prediction interval, judged against ``null``."""
    r = np.asarray(ratios, dtype=float)
    return Entry(
        claim,
        chapter,
        measure,
        paper,
        geometric_mean_ci(r),
        prediction_interval(r, log=True),
        True,
        null,
    )


def _beats(
    res: Results, claim: str, chapter: str, worse: str, better: str
) -> list[Entry]:
    """ "``better`` beats ``worse`` on Protocol B": three measures of the paired error
    ratio worse / better, and Protocol A's, which says whether the gap is in the
    representation itself."""
    paper = res["paper"][worse]["B"] / res["paper"][better]["B"]
    b = f"Protocol B error ratio {worse} / {better}"
    measures = [
        (f"{b}, Adam probe scored on its probe set (the paper's measure)",
         "B_adam_probeset", paper),
        (f"{b}, Adam probe, held-out", "B_adam_heldout", None),
        (f"{b}, least squares, held-out", "B_lstsq_heldout", None),
        (f"Protocol A error ratio {worse} / {better}, least squares, held-out "
         "(the encoder alone, without the predictor)", "A_lstsq_heldout", None),
    ]  # fmt: skip
    return [
        _ratio_entry(
            claim, chapter, m, values(res, worse, k) / values(res, better, k), p
        )
        for m, k, p in measures
    ]


def _growth_entries(sine: Results) -> list[Entry]:
    """Three separate claims about the unconstrained sine runs: explosion by the book's
    one rule (``verdicts.explodes``), the norms still growing, the loss rebound."""
    rebound = values(sine, "unconstrained", "loss_last100_total") / values(
        sine, "unconstrained", "loss_early_total"
    )
    growth = values(sine, "unconstrained", "norm_growth_from_quarter")
    diverged = sum(
        d is not None for d in sine["configs"]["unconstrained"]["diverged_at"]
    )
    boom = explodes("", growth, diverged)
    return [
        replace(
            _ratio_entry(
                "Unconstrained BiJEPA's embeddings explode",
                "03_stability",
                "embedding-norm growth from 1/4 of training to the end, against "
                f"{EXPLOSION_LIMIT:g}x (the explosion rule); {diverged} runs diverged",
                growth,
                null=EXPLOSION_LIMIT,
            ),
            diverged=diverged,
            ours=boom.interval,
        ),
        _ratio_entry(
            "Unconstrained BiJEPA's embedding norms are still growing at the end",
            "03_stability",
            "embedding-norm growth over the second half of training, against 1",
            values(sine, "unconstrained", "norm_growth_second_half"),
        ),
        _ratio_entry(
            "Unconstrained BiJEPA's loss rebounds after its early minimum",
            "03_stability",
            "loss rebound: loss of the last 100 steps / steps 400-600, against 1",
            rebound,
        ),
    ]


def findings(res: Mapping[str, Results]) -> list[Entry]:
    """The ledger's entries from the sine, Lorenz and MNIST reproductions, each with
    ``halves``: its direction on the first and on the second half of the seeds (left
    empty when a half would hold fewer than two seeds)."""
    seeds = res["sine"]["seeds"]
    half = len(seeds) // 2
    entries = _entries(res)
    if half >= 2:
        parts = [
            _entries({k: subset(r, r["seeds"][:half]) for k, r in res.items()}),
            _entries({k: subset(r, r["seeds"][half:]) for k, r in res.items()}),
        ]
        entries = [
            replace(e, halves=tuple(p[i].direction for p in parts))
            for i, e in enumerate(entries)
        ]
    return corrected(entries)


def corrected(entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` with ``holm`` set: each chapter's entries are one family, corrected
    together by ``verdicts.holm_family``."""
    out = list(entries)
    for chapter in dict.fromkeys(e.chapter for e in entries):
        idx = [i for i, e in enumerate(entries) if e.chapter == chapter]
        fixed = holm_family({i: entries[i].comparison() for i in idx})
        for i in idx:
            out[i] = replace(entries[i], holm=fixed[i].verdict)
    return out


def _entries(res: Mapping[str, Results]) -> list[Entry]:
    sine, lorenz, mnist = res["sine"], res["lorenz"], res["mnist"]
    entries = [
        *_beats(
            sine,
            "BiJEPA beats classic JEPA on sine waves",
            "04_sine",
            "classic",
            "expressive",
        ),
        *_beats(
            lorenz,
            "BiJEPA beats classic JEPA on Lorenz, 'nearly 4x'",
            "05_lorenz",
            "classic",
            "expressive",
        ),
        *_beats(
            sine,
            "Without constraints the predictor error is lowest",
            "04_sine",
            "expressive",
            "unconstrained",
        ),
        *_beats(
            sine,
            "The unit sphere hurts Protocol B",
            "04_sine",
            "restrictive",
            "expressive",
        ),
        *_growth_entries(sine),
    ]
    for name, exp in (("sine", sine), ("Lorenz", lorenz)):
        entries.append(
            _ratio_entry(
                f"BiJEPA's training loss is smoother than classic JEPA's ({name})",
                "08_verdict",
                "forward-loss roughness ratio classic / BiJEPA",
                values(exp, "classic", "roughness_fwd")
                / values(exp, "expressive", "roughness_fwd"),
            )
        )
    gain = 100 * (
        values(mnist, "expressive", "probe_acc_heldout")
        - values(mnist, "classic", "probe_acc_heldout")
    )
    p = mnist["paper"]
    entries.append(
        Entry(
            "On MNIST halves BiJEPA's linear probe is 2.7 points more accurate",
            "06_mnist",
            "held-out probe accuracy, BiJEPA - classic JEPA, points "
            f"({mnist['environment']['mnist_source']} MNIST)",
            100 * (p["expressive"]["probe_acc"] - p["classic"]["probe_acc"]),
            mean_ci(gain),
            prediction_interval(gain, log=False),
            False,
            0.0,
        )
    )
    return entries


def _num(x: float) -> str:
    """Three significant digits."""
    return f"{x:.3g}"


def _iv(iv: Interval) -> str:
    return f"{_num(iv.mean)} [{_num(iv.low)}, {_num(iv.high)}]"


def _link(chapter: str) -> str:
    return f"[{chapter.split('_', 1)[0].lstrip('0')}]({chapter}.ipynb)"


def findings_table(entries: Sequence[Entry]) -> str:
    """The introduction's table: one row per claim, on the paper's own measure where it
    has one (else the claim's first measure), with the conclusion of its held-out
    least-squares measure beside it where it has one."""
    rows = []
    for claim in dict.fromkeys(e.claim for e in entries):
        mine = [x for x in entries if x.claim == claim]
        main = next((x for x in mine if x.paper is not None), mine[0])
        exact = next(
            (
                x
                for x in mine
                if x.measure.startswith("Protocol B") and "least squares" in x.measure
            ),
            None,
        )
        rows.append(
            [
                claim,
                "–" if main.paper is None else _num(main.paper),
                _iv(main.ours),
                main.conclusion,
                main.size,
                "–" if exact is None else exact.conclusion,
                _link(main.chapter),
            ]
        )
    header = [
        "claim",
        "paper",
        "ours, 95% interval",
        "verdict",
        "size",
        "with least squares",
        "chapter",
    ]
    return _markdown(header, rows)


def ledger_table(entries: Sequence[Entry]) -> str:
    """Every entry with its measure, both verdicts, the halves and the paper's run."""
    header = [
        "claim",
        "measure",
        "paper (one run)",
        "ours, 95% interval",
        "one run, 95% prediction",
        "direction",
        "Holm, per chapter",
        "seeds 0-4 / 5-9",
        "verdict",
        "size",
        "paper's run",
    ]
    rows = [
        [
            e.claim,
            e.measure,
            "–" if e.paper is None else _num(e.paper),
            _iv(e.ours),
            f"[{_num(e.one_run.low)}, {_num(e.one_run.high)}]",
            e.direction,
            e.holm or "–",
            " / ".join(e.halves) or "–",
            e.conclusion,
            e.size,
            e.paper_run,
        ]
        for e in entries
    ]
    return _markdown(header, rows)


def size_table(entries: Sequence[Entry]) -> str:
    """The entries where the paper gives a number: is its size ours, and is its single
    run a plausible run of ours? (Chapters print their own rows with this.)"""
    header = [
        "claim",
        "measure",
        "paper (one run)",
        "ours, 95% interval",
        "one run, 95% prediction",
        "size",
        "paper's run",
    ]
    rows = [
        [
            e.claim,
            e.measure,
            _num(e.paper),
            _iv(e.ours),
            f"[{_num(e.one_run.low)}, {_num(e.one_run.high)}]",
            e.size,
            e.paper_run,
        ]
        for e in entries
        if e.paper is not None
    ]
    return _markdown(header, rows)


def paper_run_table(
    paper: Mapping[str, float], ours: Mapping[str, Sequence[float]]
) -> str:
    """The paper's single run of a positive measure (an MSE) against our runs, one row
    per variant (name -> the paper's number, name -> ours per seed): our geometric
    mean with its 95% interval, the 95% prediction interval of one more run (log
    scale), the range of our seeds, and the ledger's *size* and *paper's run* words."""
    rows = []
    for name, v in ours.items():
        v = np.asarray(v, dtype=float)
        e = Entry(
            name,
            "",
            "",
            float(paper[name]),
            geometric_mean_ci(v),
            prediction_interval(v, log=True),
            True,
            1.0,
        )
        rows.append(
            [
                name,
                _num(e.paper),
                _iv(e.ours),
                f"[{_num(e.one_run.low)}, {_num(e.one_run.high)}]",
                f"{_num(v.min())} – {_num(v.max())}",
                e.size,
                e.paper_run,
            ]
        )
    header = [
        "variant",
        "paper (one run)",
        "ours, geometric mean [95% interval]",
        "one run, 95% prediction",
        "our seeds, range",
        "size",
        "paper's run",
    ]
    return _markdown(header, rows)


def chapter_entries(entries: Sequence[Entry], chapter: str) -> list[Entry]:
    """The entries a chapter computes (``chapter``: its file stem, "04_sine")."""
    mine = [e for e in entries if e.chapter == chapter]
    if not mine:
        have = sorted({e.chapter for e in entries})
        raise ValueError(f"chapter must be one of {have}, got {chapter!r}")
    return mine


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


LEDGER_HEAD = """\
# The claim ledger

Every claim of the paper that the book judges, one row per way of measuring it. The
numbers are read from the saved reproductions (ten seeds each, held-out data unless the
measure says otherwise; `book/results/*.json`) by `bijepa_nb.analysis.ledger`, which
also writes this page (`python -m bijepa_nb.book --ledger`); a test fails when the page
and the saved results disagree. Every claim each chapter judges, the paper's and the
book's own, follows in a second part, *Every chapter's claims*.

- **direction**: where the 95% interval over seeds lies against the measure's null
  value (1 for a ratio, 0 for a difference; tenfold for the explosion rule, and a run
  that diverged explodes): *holds* above it, *reversed* below it, *does not hold* when
  it contains it.
- **Holm, per chapter**: the direction again after Holm's correction over the rows of
  the same chapter (one family per chapter, `verdicts.holm_family`): a *holds* or
  *reversed* survives only where its adjusted p-value stays below 5%.
- **size**, where the paper gives a number: *as the paper* when that number lies inside
  our interval, *larger* or *smaller* when ours lies above or below it.
- **verdict**: the direction, kept only where the first and the second half of the
  seeds each give it too; otherwise *not resolved*.
- **paper's run**: the paper reports one run; *a plausible run* when its number lies
  inside the 95% prediction interval of a single run of ours, *outside* when not.

Ratios are geometric means with intervals on the log scale; the MNIST difference is an
arithmetic mean. Each "X beats Y" claim ends with a Protocol A row, the encoder read out
alone: it says whether a Protocol B gap lies in the representation itself or only in the
predictor on top of it.

"""


def ledger_page(entries: Sequence[Entry], own: str = "") -> str:
    """The Markdown of ``book/ledger.md``: the paper's claims, then ``own``, the book's
    own claims (``own_claims_page``)."""
    return LEDGER_HEAD + ledger_table(entries) + ("\n" + own if own else "")


def write_pages(book: str | Path) -> list[Path]:
    """Write ``ledger.md`` and the introduction's ``_findings.md`` into ``book``
    (the folder holding ``results/``); returns the paths written."""
    book = Path(book)
    entries = findings(load_results(book / "results"))
    out = {
        book / "ledger.md": ledger_page(entries, own_claims_page(book)),
        book / "_findings.md": findings_table(entries),
    }
    for path, text in out.items():
        path.write_text(text)
    return list(out)


# ------------------------------------------------------------ the book's own claims
#: The schema of a chapter's saved claims (``check_claims`` states every field).
CLAIMS_SCHEMA = "bijepa-claims/1"
#: The folder below ``book/results`` that holds them, one file per chapter.
CLAIMS_DIR = "claims"
#: The words of a direction or of Holm's correction (``verdicts.verdict``'s rule).
WORDS = ("holds", "reversed", "depends", "does not hold", "too few seeds")
#: ... and of a conclusion, which may also leave a claim open.
CONCLUSIONS = (*WORDS, UNRESOLVED)


def interval_record(label: str, iv: Interval) -> dict[str, Any]:
    """One measured interval of an entry: ``label`` (the read-out or probe), mean,
    low, high, n and ``log`` (a geometric mean or ratio, interval on the log scale)."""
    return {
        "label": label,
        "mean": float(iv.mean),
        "low": float(iv.low),
        "high": float(iv.high),
        "n": int(iv.n),
        "log": bool(iv.log),
    }


def test_record(label: str, c: Comparison) -> dict[str, Any]:
    """One test of an entry, kept so that its words can be judged again from the file
    (``rejudge``): its interval (``interval_record``) with the ``std`` behind it, its
    own ``word``, the ``null`` it is tested against (None: the word does not rest on
    this interval, e.g. a run diverged) and ``upward`` (the claim says "above")."""
    return {
        **interval_record(label, c.interval),
        "std": float(c.interval.std),
        "word": c.verdict,
        "null": None if c.null is None else float(c.null),
        "upward": bool(c.upward),
    }


def claim_record(
    claim: str,
    measure: str,
    ours: Sequence[tuple[str, Interval | Comparison]],
    direction: str,
    holm: str,
    conclusion: str,
    replication: str | None = None,
    checks: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One entry of a chapter's saved claims (see ``check_claims``); ``ours``: (label,
    95% interval over seeds) per way the claim is measured, or (label, the test's
    ``Comparison``) to keep each test's null and word too (``test_record``)."""
    extra = {"checks": dict(checks)} if checks else {}
    return {
        "claim": claim,
        "measure": measure,
        "ours": [
            test_record(label, x)
            if isinstance(x, Comparison)
            else interval_record(label, x)
            for label, x in ours
        ],
        "direction": direction,
        "holm": holm,
        "replication": replication,
        "conclusion": conclusion,
        **extra,
    }


def _fail(field: str, want: str, got: Any) -> ValueError:
    return ValueError(f"{field} must be {want}, got {got!r}")


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(field, "a non-empty str", value)
    return value


def _seeds(field: str, value: Any) -> list[int]:
    ok = (
        isinstance(value, list)
        and value
        and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value
        )
    )
    if not ok or len(set(value)) != len(value):
        raise _fail(field, "a non-empty list of distinct seeds (ints >= 0)", value)
    return value


def _word(field: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise _fail(field, f"one of {list(allowed)}", value)
    return value


def _check_interval(field: str, iv: Any) -> None:
    if not isinstance(iv, Mapping):
        raise _fail(field, "a mapping with label, mean, low, high, n, log", iv)
    _text(f"{field}.label", iv.get("label"))
    n = iv.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise _fail(f"{field}.n", "an int >= 2 (seeds behind the interval)", n)
    if not isinstance(iv.get("log"), bool):
        raise _fail(f"{field}.log", "a bool", iv.get("log"))
    for key in ("mean", "low", "high"):
        x = iv.get(key)
        if (
            isinstance(x, bool)
            or not isinstance(x, (int, float))
            or not math.isfinite(x)
        ):
            raise _fail(f"{field}.{key}", "a finite number", x)
    if not iv["low"] <= iv["mean"] <= iv["high"]:
        raise _fail(f"{field}", "ordered low <= mean <= high", iv)
    if iv["log"] and iv["low"] <= 0:
        raise _fail(f"{field}.low", "> 0 on the log scale", iv["low"])
    if "word" not in iv:
        return
    # a test_record: the test itself, judged again by ``rejudge``
    _word(f"{field}.word", iv.get("word"), WORDS)
    if not isinstance(iv.get("upward"), bool):
        raise _fail(f"{field}.upward", "a bool", iv.get("upward"))
    std = iv.get("std")
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not std >= 0:
        raise _fail(f"{field}.std", "a number >= 0", std)
    null = iv.get("null")
    if null is not None and (
        isinstance(null, bool)
        or not isinstance(null, (int, float))
        or not math.isfinite(null)
        or (iv["log"] and null <= 0)
    ):
        raise _fail(
            f"{field}.null", "null or a finite number (> 0 on a log scale)", null
        )


def check_claims(data: Any) -> dict[str, Any]:
    """``data`` if it is a chapter's saved claims in the schema ``CLAIMS_SCHEMA``, else
    a ValueError naming the first wrong field and what it must be. The fields:

    - ``schema``: ``CLAIMS_SCHEMA``; ``chapter``: the notebook's stem ("11_peers");
    - ``seeds``: the seeds behind every interval; ``level``: their confidence level;
      ``family``: how the chapter's claims are corrected together (Holm's, in words);
    - ``replication_seeds``: the other seeds the claims were judged on again, or null;
    - ``part`` (optional): the title of a second family of the same chapter, saved in
      a file of its own (``08_verdict_raw.json``) and corrected on its own;
    - ``entries``: one per claim (distinct names): ``claim``, ``measure``, ``ours``
      (a non-empty list of intervals: label, mean, low, high, n >= 2 and ``log``),
      ``direction`` and ``holm`` (``WORDS``), ``replication`` (the word on the other
      seeds; null exactly when there are none), ``conclusion`` (``CONCLUSIONS``) and,
      optionally, ``checks``: the words of the chapter's other checks of the claim
      (check -> word, e.g. its seed subsets or fresh seeds), which the conclusion
      had to survive.
    """
    if not isinstance(data, Mapping):
        raise _fail("claims", "a mapping (the JSON object of one chapter)", data)
    if data.get("schema") != CLAIMS_SCHEMA:
        raise _fail("schema", repr(CLAIMS_SCHEMA), data.get("schema"))
    chapter = _text("chapter", data.get("chapter"))
    if not (chapter[:2].isdigit() and chapter[2:3] == "_"):
        raise _fail("chapter", "a notebook's stem such as '11_peers'", chapter)
    seeds = _seeds("seeds", data.get("seeds"))
    level = data.get("level")
    if isinstance(level, bool) or not isinstance(level, float) or not 0 < level < 1:
        raise _fail("level", "a float in (0, 1), the intervals' level", level)
    _text("family", data.get("family"))
    if "part" in data:
        _text("part", data["part"])
    other = data.get("replication_seeds")
    if other is not None and set(_seeds("replication_seeds", other)) & set(seeds):
        raise _fail("replication_seeds", f"seeds other than {seeds}", other)
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise _fail("entries", "a non-empty list of claims", entries)
    names = set()
    for i, e in enumerate(entries):
        at = f"entries[{i}]"
        if not isinstance(e, Mapping):
            raise _fail(at, "a mapping (one claim)", e)
        name = _text(f"{at}.claim", e.get("claim"))
        if name in names:
            raise _fail(f"{at}.claim", "a claim named once per chapter", name)
        names.add(name)
        _text(f"{at}.measure", e.get("measure"))
        ours = e.get("ours")
        if not isinstance(ours, list) or not ours:
            raise _fail(f"{at}.ours", "a non-empty list of intervals", ours)
        for j, iv in enumerate(ours):
            _check_interval(f"{at}.ours[{j}]", iv)
        _word(f"{at}.direction", e.get("direction"), WORDS)
        _word(f"{at}.holm", e.get("holm"), WORDS)
        _word(f"{at}.conclusion", e.get("conclusion"), CONCLUSIONS)
        if other is None and e.get("replication") is not None:
            raise _fail(
                f"{at}.replication", "null (no replication_seeds)", e["replication"]
            )
        if other is not None:
            _word(f"{at}.replication", e.get("replication"), WORDS)
        checks = e.get("checks", {})
        if not isinstance(checks, Mapping) or not all(
            isinstance(k, str) and k and isinstance(w, str) and w
            for k, w in checks.items()
        ):
            raise _fail(f"{at}.checks", "a mapping of check -> word (str)", checks)
    return dict(data)


def claims_file(
    chapter: str,
    seeds: Sequence[int],
    family: str,
    entries: Sequence[Mapping[str, Any]],
    replication_seeds: Sequence[int] | None = None,
    level: float = 0.95,
    part: str | None = None,
) -> dict[str, Any]:
    """A chapter's saved claims (``check_claims``) from its entries (``claim_record``);
    ``part``: the title of a second family of the chapter."""
    return check_claims(
        {
            "schema": CLAIMS_SCHEMA,
            "chapter": chapter,
            **({"part": part} if part else {}),
            "seeds": [int(s) for s in seeds],
            "level": level,
            "family": family,
            "replication_seeds": (
                None
                if replication_seeds is None
                else [int(s) for s in replication_seeds]
            ),
            "entries": [dict(e) for e in entries],
        }
    )


def conclude(holm: str, checks: Mapping[str, str]) -> str:
    """The ledger's conclusion of a claim: its word after Holm, kept only where every
    other check of it (a rerun on other seeds, seed subsets, fresh seeds) gives that
    word too; else "not resolved" (``verdicts.UNRESOLVED``)."""
    return holm if all(w == holm for w in checks.values()) else UNRESOLVED


def rerun_checks(
    path: str | Path, seeds: Sequence[int], keys: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, str]]:
    """The check "the same word on other seeds" of each claim, from the chapter's saved
    rerun at ``path`` (``verdicts.rerun``): claim -> {"seeds 5-9": word}. ``keys``:
    claim -> the rerun's words behind it (one word, or the words of its tests, joined
    by ``verdicts.combine``). A claim the rerun does not hold gets no check; no
    rerun (no file, or the same seeds), no checks."""
    again = rerun(path, seeds)
    if again is None:
        return {}
    other, words = again
    out = {}
    for claim, names in keys.items():
        if names and all(n in words for n in names):
            w = [words[n] for n in names]
            out[claim] = {
                f"seeds {seed_range(other)}": w[0] if len(w) == 1 else combine(w)
            }
    return out


def family_claims(
    chapter: str,
    seeds: Sequence[int],
    family: Mapping[str, Mapping[str, Comparison]],
    measure: str | Mapping[str, str],
    checks: Mapping[str, Mapping[str, str]] | None = None,
    level: float = 0.95,
    part: str | None = None,
) -> dict[str, Any]:
    """A chapter's family of claims (claim -> {test label: Comparison}, one test per
    probe or measure) as its saved claims: each claim's word alone and after Holm's
    correction over every test of the family (``verdicts.holm_claims``), its tests
    (``test_record``), its other ``checks`` (claim -> {check: word}; claims without
    any may be left out) and the conclusion (``conclude``). ``measure``: how the
    claims are measured, one text for all or one per claim."""
    judged = holm_claims(family, level)
    checks = checks or {}
    unknown = set(checks) - set(family)
    if unknown:
        raise ValueError(
            f"checks must name claims of the family, got {sorted(unknown)}"
        )
    entries = []
    for claim, tests in family.items():
        alone, holm, _ = judged[claim]
        mine = dict(checks.get(claim, {}))
        entries.append(
            claim_record(
                claim,
                measure if isinstance(measure, str) else measure[claim],
                list(tests.items()),
                alone,
                holm,
                conclude(holm, mine),
                checks=mine,
            )
        )
    n = sum(len(t) for t in family.values())
    text = (
        f"Holm's correction over its {n} tests of {len(family)} claims "
        "(`verdicts.holm_claims`)"
    )
    return claims_file(chapter, seeds, text, entries, level=level, part=part)


#: How chapter 6's differences are measured (``mnist_claims``).
MNIST_MEASURE = (
    "held-out paired difference over seeds, the first minus the second (probe "
    "accuracy in points; for the decoder's MSE lower is better), against 0: holds "
    "when the first is better"
)
#: How chapter 8's claims are measured (``paper_claims_file``).
PAPER_MEASURE = (
    "the tests of the claim over the saved seeds, as in the chapter's claims table: "
    "error and roughness ratios (geometric means) against 1, the norm growth against "
    "tenfold, the MNIST gain in points against 0"
)


def half_checks(halves: Mapping[str, Mapping[str, str]], words=None) -> dict:
    """claim -> {half: its word there}, from each half's words (half -> {claim:
    word}); ``words`` maps a chapter's words to the ledger's (e.g. "better" ->
    "holds"), a word it lacks staying as it is."""
    words = words or {}
    out: dict[str, dict[str, str]] = {}
    for half, by in halves.items():
        for claim, w in by.items():
            out.setdefault(claim, {})[half] = words.get(w, w)
    return out


def mnist_claims(
    res: Results, labels: Mapping[str, str], level: float = 0.95
) -> dict[str, Any]:
    """Chapter 6's saved claims: its differences (``results.mnist_family``) judged as
    one family, each checked on the two halves of the seeds."""
    seeds = res["seeds"]
    n = len(seeds) // 2
    halves = {
        f"seeds {seed_range(h)}": mnist_verdicts(subset(res, h), labels)
        for h in ((seeds[:n], seeds[n:]) if n >= 2 else ())
    }
    family = mnist_family(res, labels)
    checks = {c: w for c, w in half_checks(halves, LEDGER_WORD).items() if c in family}
    return family_claims("06_mnist", seeds, family, MNIST_MEASURE, checks, level)


def paper_claims_file(res: Mapping[str, Results], level: float = 0.95) -> dict:
    """Chapter 8's saved claims: the paper's claims (``results.paper_claims``) as one
    family of tests (``results.paper_family``), each checked on the two halves of the
    seeds."""
    seeds = res["sine"]["seeds"]
    n = len(seeds) // 2
    halves = {}
    for h in (seeds[:n], seeds[n:]) if n >= 2 else ():
        sub = {exp: subset(r, h) for exp, r in res.items()}
        halves[f"seeds {seed_range(h)}"] = {
            c.text: c.verdict for c in paper_claims(sub, level)
        }
    family = paper_family(paper_claims(res, level), level)
    checks = half_checks(halves)
    return family_claims("08_verdict", seeds, family, PAPER_MEASURE, checks, level)


#: How chapter 8's own claims are measured (``raw_data_claims``).
RAW_MEASURE = (
    "held-out, the best JEPA read-out of each experiment (chosen by its mean over "
    "seeds) against a baseline on the raw data: errors by the paired ratio baseline "
    "/ JEPA (geometric mean, interval on the log scale) against 1, MNIST accuracy by "
    "the paired difference JEPA - baseline in points against 0; holds when the JEPA "
    "is better"
)
#: The title of chapter 8's second family in the ledger.
RAW_PART = "the book's own claims: do the representations beat the raw data?"


def raw_data_claims(res: Mapping[str, Results], level: float = 0.95) -> dict:
    """Chapter 8's own claims (``results.raw_data_family``), a family of their own,
    corrected apart from the paper's claims and each checked on the two halves of
    the seeds (the best read-out chosen again on each half)."""
    seeds = res["sine"]["seeds"]
    n = len(seeds) // 2
    halves = {}
    for h in (seeds[:n], seeds[n:]) if n >= 2 else ():
        sub = {exp: subset(r, h) for exp, r in res.items()}
        halves[f"seeds {seed_range(h)}"] = {
            r.claim: r.word for r in raw_data_comparison(sub, level)
        }
    family = raw_data_family(res, level)
    return family_claims(
        "08_verdict", seeds, family, RAW_MEASURE, half_checks(halves), level, RAW_PART
    )


def rejudge(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A chapter's saved claims judged again from the tests they keep
    (``test_record``): each test's word from its interval and null, each claim's
    direction and its word after Holm over every test of the file (the rules of
    ``family_claims``), and the conclusion. A file whose words were not made by
    those rules from its own intervals comes back different."""
    claims = check_claims(claims)
    family = {}
    for i, e in enumerate(claims["entries"]):
        tests = {}
        for j, iv in enumerate(e["ours"]):
            if "word" not in iv:
                raise ValueError(
                    f"entries[{i}].ours[{j}] must be a test_record (with its word and "
                    "null) to be judged again"
                )
            interval = Interval(
                iv["mean"], iv["std"], iv["low"], iv["high"], iv["n"],
                claims["level"], iv["log"],
            )  # fmt: skip
            null, up = iv["null"], iv["upward"]
            w = iv["word"] if null is None else word(side(interval, null), up)
            tests[iv["label"]] = Comparison(iv["label"], interval, w, null, up)
        family[e["claim"]] = tests
    judged = holm_claims(family, claims["level"])
    out = copy.deepcopy(dict(claims))
    for e in out["entries"]:
        alone, holm, _ = judged[e["claim"]]
        for iv, c in zip(e["ours"], family[e["claim"]].values()):
            iv["word"] = c.verdict
        e["direction"], e["holm"] = alone, holm
        e["conclusion"] = conclude(holm, e.get("checks", {}))
    return out


def save_claims(path: str | Path, claims: Mapping[str, Any]) -> Path:
    """Check ``claims`` (``check_claims``) and write them to ``path`` as JSON."""
    check_claims(claims)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(claims, indent=1, ensure_ascii=False) + "\n")
    return path


def load_claims(path: str | Path) -> dict[str, Any]:
    """A chapter's saved claims from ``path``, checked (``check_claims``); a wrong field
    is an error naming the file and the field."""
    path = Path(path)
    try:
        return check_claims(json.loads(path.read_text()))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def claims_word_counts(claims: Mapping[str, Any]) -> dict[str, int]:
    """How many of a chapter's claims conclude each word (the chapter prints this)."""
    counts = {w: 0 for w in CONCLUSIONS}
    for e in claims["entries"]:
        counts[e["conclusion"]] += 1
    return {w: n for w, n in counts.items() if n}


def seed_range(seeds: Sequence[int]) -> str:
    """ "0-9" for consecutive seeds, else the list."""
    s = sorted(seeds)
    if s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"{s[0]}-{s[-1]}"
    return ", ".join(map(str, s))


def chapter_title(notebook: str | Path) -> str:
    """The first heading of a chapter's notebook ("BiJEPA among its peers")."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    for c in cells:
        for line in "".join(c["source"]).splitlines():
            if c["cell_type"] == "markdown" and line.startswith("# "):
                return line[2:].strip()
    raise ValueError(f"{notebook}: no '# ' heading")


def claims_table(claims: Mapping[str, Any]) -> str:
    """One chapter's saved claims as a table: claim, our interval(s), direction, Holm,
    the word on other seeds (where the chapter has them), the conclusion and a link
    to the chapter. Where the entries differ in their measure, a column gives its
    number in the list ``_claims_section`` prints above the table."""
    entries = claims["entries"]
    measures = list(dict.fromkeys(e["measure"] for e in entries))
    many = len(measures) > 1
    again = claims["replication_seeds"]
    header = ["claim", *(["measure"] if many else [])]
    header += ["ours, 95% interval", "direction", "Holm"]
    header += [f"seeds {seed_range(again)}"] if again else []
    checked = any(e.get("checks") for e in entries)
    header += ["other checks"] if checked else []
    header += ["conclusion", "chapter"]
    rows = []
    for e in entries:
        ours = "; ".join(
            ("" if len(e["ours"]) == 1 else f"{iv['label']}: ")
            + _iv(Interval(iv["mean"], 0.0, iv["low"], iv["high"], iv["n"]))
            for iv in e["ours"]
        )
        row = [e["claim"], *([str(measures.index(e["measure"]) + 1)] if many else [])]
        row += [ours, e["direction"], e["holm"]]
        row += [e["replication"]] if again else []
        checks = e.get("checks", {})
        row += ["; ".join(f"{k}: {w}" for k, w in checks.items()) or "–"] * checked
        rows.append([*row, e["conclusion"], _link(claims["chapter"])])
    return _markdown(header, rows)


def chapter_rows(claims: Mapping[str, Any]) -> str:
    """A chapter's rows as the ledger page shows them: seeds, family, the measures
    and the table (``claims_table``). Chapters print their own rows with this."""
    measures = list(dict.fromkeys(e["measure"] for e in claims["entries"]))
    lines = [f"Seeds {seed_range(claims['seeds'])}; {claims['family']}."]
    if len(measures) == 1:
        lines.append(f"Measure: {measures[0]}.")
    else:
        lines += ["", "Measures:", ""]
        lines += [f"{k}. {m}" for k, m in enumerate(measures, 1)]
    return "\n".join(lines) + "\n\n" + claims_table(claims)


def _claims_section(book: Path, claims: Mapping[str, Any]) -> str:
    chapter = claims["chapter"]
    num = chapter.split("_", 1)[0].lstrip("0")
    title = (
        f"#### Chapter {num}, {claims['part']}"
        if "part" in claims
        else f"### Chapter {num}: {chapter_title(book / f'{chapter}.ipynb')}"
    )
    head = f"{title}\n\n[Chapter {num}]({chapter}.ipynb). "
    return head + chapter_rows(claims)


def _beyond_section(book: Path, level: float = 0.95) -> str:
    """Chapter 9's claims, read as its summary page reads them (``beyond.conclusions``)."""
    paths = [
        book / "results" / f
        for f in ("beyond_verdicts.json", "beyond_replication.json")
    ]
    run, rerun = (json.loads(p.read_text())["seeds"] for p in paths)
    a, b = seed_range(run), seed_range(rerun)
    rows = []
    for claim, w1, w2, h1, h2, end in beyond.conclusions(*paths, level):
        idea = claim.split(":")[0].split(" ")[0]
        page = next(book.glob(f"09_{idea}_*.ipynb")).stem
        holm = f"{h1} / {h2}" if h1 else "–"
        rows.append([f"[9.{idea}]({page}.ipynb)", claim, w1, w2, holm, end])
    head = [
        f"### Chapter 9: {chapter_title(book / '09_beyond.ipynb')}",
        "",
        f"[Chapter 9](09_beyond.ipynb), seeds {a}, rerun on seeds {b}; Holm's "
        "correction over each run's family of tests (`beyond.family_rows`). A "
        "conclusion keeps a word only where both runs give it and Holm keeps it on "
        "both (`beyond.conclusions`).",
        "",
    ]
    header = [
        "page",
        "claim",
        f"seeds {a}",
        f"seeds {b}",
        f"Holm, {a} / {b}",
        "conclusion",
    ]
    return "\n".join(head) + "\n" + _markdown(header, rows)


OWN_HEAD = """\
## Every chapter's claims

Every claim a chapter judges, the paper's and the book's own, one table per chapter,
as the chapter prints it: our 95% interval over seeds for each test of the claim
(ratios as geometric means, on the log scale), the **direction** by the book's rule
(`verdicts.verdict`), the word after **Holm**'s correction over the chapter's whole
family of claims, the words of the chapter's **other checks** (a rerun on other
seeds, the halves of the seeds, seed subsets, fresh seeds), and the **conclusion**:
the word after Holm where every other check gives it too, else *not resolved*
(`ledger.conclude`). The chapters save these rows as they print them
(`book/results/claims/*.json`, schema `bijepa-claims/1`, written by
`ledger.save_claims`); a test fails when a chapter's printed verdicts, its saved file
and this page disagree, and the words of a file are judged again from the intervals
it keeps (`ledger.rejudge`).

"""


def own_claims_page(book: str | Path, level: float = 0.95) -> str:
    """The second part of the ledger page: chapter 9's claims, then every chapter's
    saved claims below ``book/results/claims`` (in chapter order)."""
    book = Path(book)
    sections = {
        path.stem: _claims_section(book, load_claims(path))
        for path in (book / "results" / CLAIMS_DIR).glob("*.json")
    }
    sections["09_beyond"] = _beyond_section(book, level)
    return OWN_HEAD + "".join("\n" + sections[k] for k in sorted(sections))
