"""The book's own claims in the ledger: one schema for a chapter's saved claims
(``ledger.check_claims``), files that follow what the analysis computes now from the
committed results, chapters whose printed verdicts agree with their files, and a
ledger page that shows them all. Each check is shown to fire on a made-up
disagreement."""

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bijepa_nb.analysis import beyond, ledger, maps, stats, verdicts
from bijepa_nb.analysis import peers as ap
from bijepa_nb.analysis import regimes as ar
from bijepa_nb.analysis.stats import Interval
from bijepa_nb.experiments import sweep as sw

BOOK = Path(__file__).resolve().parents[1] / "book"
RESULTS = BOOK / "results"
CLAIMS = RESULTS / ledger.CLAIMS_DIR


def computed_peers():
    studies = {
        "sine": ap.load_or_run(RESULTS / "peers_sine.json", "sine"),
        "Lorenz": ap.load_or_run(RESULTS / "peers_lorenz.json", "lorenz"),
    }
    return ap.ledger_claims(studies, ap.judge(studies))


def computed_regimes():
    res = ar.load_or_run(RESULTS / "regimes.json")
    return ar.ledger_claims(res, ar.verdict_table(ar.all_tests(res)))


def computed_maps(level=0.95):
    """Chapter 10's family, computed as the chapter does at its default parameters."""
    res = maps.load_or_sweep(RESULTS / "maps_sine.json", "sine")
    lz = maps.load_or_sweep(RESULTS / "maps_lorenz.json", "lorenz")
    g, gl = res["grid"], lz["grid"]
    B = sw.grid_values(res, "B_lstsq_heldout")
    BL = sw.grid_values(lz, "B_lstsq_heldout")
    paper = (0.5, 0.995)
    kw = dict(alphas=g["alpha"], taus=g["ema_momentum"], modes=g["modes"], paper=paper)
    lorenz_kw = dict(kw, alphas=gl["alpha"], taus=gl["ema_momentum"], modes=["Lorenz"])
    grids = [(B, kw), (BL, lorenz_kw)]
    full = maps.split_verdicts(grids, {"all": range(B.shape[-1])})["all"]
    splits = maps.split_verdicts(grids, verdicts.seed_splits(B.shape[-1]))
    robust = {row[0]: row[-1] for row in verdicts.robust_words(full, splits)}
    fresh = {}
    for m, mode in enumerate(g["modes"]):
        path = RESULTS / f"maps_fresh_{mode}.json"
        if path.exists():
            best = maps.best_cell(B[m], g["alpha"], g["ema_momentum"])
            fresh_res = json.loads(path.read_text())
            fresh[mode] = maps.fresh_scores(fresh_res, mode, best, paper, level)
    path = RESULTS / "maps_fresh_lorenz.json"
    if path.exists():
        best = maps.best_cell(BL[0], gl["alpha"], gl["ema_momentum"])
        fresh_res = json.loads(path.read_text())
        fresh["Lorenz"] = maps.fresh_scores(
            fresh_res, "expressive", best, paper, level, label="Lorenz"
        )
    family = {**maps.paired_tests(B, **kw), **maps.paired_tests(BL, **lorenz_kw)}
    corrected = verdicts.holm_family(family, level)
    return maps.ledger_claims(family, corrected, robust, fresh, g["seeds"], level)


MODELS = {"classic": "Classic JEPA", "expressive": "BiJEPA"}


def _saved(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


#: The chapters that save claims in the schema, and how to compute them afresh from
#: what they saved: chapters that read saved results compute the whole file again;
#: chapters that train their own runs (2-5) have their words judged again from the
#: intervals the file keeps (``ledger.rejudge``).
COMPUTE = {
    "02_bijepa": ledger.rejudge,
    "03_stability": ledger.rejudge,
    "04_sine": ledger.rejudge,
    "05_lorenz": ledger.rejudge,
    "06_mnist": lambda saved: ledger.mnist_claims(_saved("mnist"), MODELS),
    "08_verdict": lambda saved: ledger.paper_claims_file(
        {k: _saved(k) for k in ("sine", "lorenz", "mnist")}
    ),
    "08_verdict_raw": lambda saved: ledger.raw_data_claims(
        {k: _saved(k) for k in ("sine", "lorenz", "mnist")}
    ),
    "10_maps": lambda saved: computed_maps(),
    "11_peers": lambda saved: computed_peers(),
    "12_regimes": lambda saved: computed_regimes(),
}


# ------------------------------------------------------------------ the schema
def _valid():
    iv = Interval(2.0, 0.1, 1.5, 2.5, 10, log=True)
    entry = ledger.claim_record(
        "a beats b", "ratio b / a", [("Protocol B", iv)], "holds", "holds", "holds"
    )
    return ledger.claims_file("11_peers", range(10), "Holm over 1 claim", [entry])


def test_a_valid_file_saves_and_loads_back(tmp_path):
    data = _valid()
    path = ledger.save_claims(tmp_path / "claims" / "11_peers.json", data)
    assert ledger.load_claims(path) == data
    assert ledger.claims_word_counts(data) == {"holds": 1}


def _set(data, where, value):
    """``data`` with the field at the dotted ``where`` set to ``value`` (or removed)."""
    out = copy.deepcopy(data)
    *head, last = where.split(".")
    node = out
    for key in head:
        node = node[int(key)] if key.isdigit() else node[key]
    key = int(last) if last.isdigit() else last
    if value is KeyError:
        del node[key]
    else:
        node[key] = value
    return out


@pytest.mark.parametrize(
    "where, value, message",
    [
        ("schema", "bijepa-claims/0", r"schema must be 'bijepa-claims/1'"),
        ("chapter", "peers", r"chapter must be a notebook's stem"),
        ("seeds", [], r"seeds must be a non-empty list of distinct seeds"),
        ("seeds", [0, 0, 1], r"seeds must be a non-empty list of distinct seeds"),
        ("level", 95, r"level must be a float in \(0, 1\)"),
        ("family", "", r"family must be a non-empty str"),
        ("replication_seeds", [3, 11], r"replication_seeds must be seeds other than"),
        ("entries", [], r"entries must be a non-empty list"),
        ("entries.0.claim", KeyError, r"entries\[0\].claim must be a non-empty str"),
        ("entries.0.direction", "yes", r"entries\[0\].direction must be one of"),
        ("entries.0.holm", "not resolved", r"entries\[0\].holm must be one of"),
        ("entries.0.conclusion", None, r"entries\[0\].conclusion must be one of"),
        ("entries.0.replication", "holds", r"entries\[0\].replication must be null"),
        ("entries.0.ours", [], r"entries\[0\].ours must be a non-empty list"),
        ("entries.0.ours.0.n", 1, r"entries\[0\].ours\[0\].n must be an int >= 2"),
        ("entries.0.ours.0.low", float("nan"), r"ours\[0\].low must be a finite"),
        ("entries.0.ours.0.low", 3.0, r"ours\[0\] must be ordered low <= mean"),
        ("entries.0.ours.0.log", "yes", r"entries\[0\].ours\[0\].log must be a bool"),
        ("entries.0.checks", {"subsets": 3}, r"entries\[0\].checks must be a mapping"),
    ],
)
def test_a_wrong_field_is_named_with_what_it_must_be(where, value, message):
    with pytest.raises(ValueError, match=message):
        ledger.check_claims(_set(_valid(), where, value))


def test_a_claim_named_twice_and_a_missing_replication_are_refused(tmp_path):
    data = _valid()
    data["entries"].append(dict(data["entries"][0]))
    with pytest.raises(ValueError, match=r"entries\[1\].claim must be a claim named"):
        ledger.check_claims(data)
    again = _set(_valid(), "replication_seeds", [10, 11])
    with pytest.raises(ValueError, match=r"entries\[0\].replication must be one of"):
        ledger.check_claims(again)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_set(_valid(), "entries.0.holm", "maybe")))
    with pytest.raises(ValueError, match=r"bad.json: entries\[0\].holm"):
        ledger.load_claims(bad)


def _toy_family():
    """Three claims on five seeds: one clear, one whose margin Holm removes (p near
    0.04 among three tests), one with two tests (its probes)."""
    z = np.array([-1.2649, -0.6325, 0.0, 0.6325, 1.2649])  # mean 0, std 1

    def ratios(log_mean, log_std):
        return stats.geometric_mean_ci(np.exp(log_mean + log_std * z))

    strong, weak, flat = ratios(1.0, 0.2), ratios(0.1453, 0.1), ratios(0.0, 0.3)

    def test(name, iv):
        return verdicts.Comparison(name, iv, verdicts.verdict([iv]), 1.0)

    return {
        "a beats b": {"Adam": test("a/b", strong)},
        "c beats d": {"Adam": test("c/d", weak)},
        "e beats f": {"Adam": test("e/f", strong), "least squares": test("e/f", flat)},
    }


def test_family_claims_keep_their_tests_and_judge_them_again(tmp_path):
    rerun = tmp_path / "rerun.json"
    words = {"a beats b": "holds", "c beats d": "holds", "e, Adam": "holds"}
    rerun.write_text(json.dumps({"seeds": [5, 6, 7, 8, 9], "verdicts": words}))
    keys = {"a beats b": ["a beats b"], "c beats d": ["c beats d"], "e beats f": []}
    checks = ledger.rerun_checks(rerun, range(5), keys)
    assert checks == {
        "a beats b": {"seeds 5-9": "holds"},
        "c beats d": {"seeds 5-9": "holds"},
    }
    assert ledger.rerun_checks(rerun, [5, 6, 7, 8, 9], keys) == {}, "same seeds"
    assert ledger.rerun_checks(tmp_path / "none.json", range(5), keys) == {}
    data = ledger.family_claims("04_sine", range(5), _toy_family(), "ratio", checks)
    by = {e["claim"]: e for e in data["entries"]}
    assert (by["a beats b"]["holm"], by["a beats b"]["conclusion"]) == ("holds",) * 2
    c = by["c beats d"]  # holds alone; Holm removes it; the rerun says holds
    assert (c["direction"], c["holm"], c["conclusion"]) == (
        "holds",
        "does not hold",
        "not resolved",
    )
    assert by["e beats f"]["direction"] == "depends"
    assert [iv["label"] for iv in by["e beats f"]["ours"]] == ["Adam", "least squares"]
    assert ledger.rejudge(data) == data
    moved = _set(data, "entries.0.ours.0.low", 0.5)  # now includes 1
    assert ledger.rejudge(moved)["entries"][0]["direction"] == "does not hold"
    plain = _set(data, "entries.0.ours.0", dict(data["entries"][0]["ours"][0]))
    del plain["entries"][0]["ours"][0]["word"]
    with pytest.raises(ValueError, match=r"entries\[0\].ours\[0\] must be a test_rec"):
        ledger.rejudge(plain)
    with pytest.raises(ValueError, match="checks must name claims of the family"):
        ledger.family_claims("04_sine", range(5), _toy_family(), "r", {"x": {}})


@pytest.mark.parametrize(
    "where, value, message",
    [
        ("entries.0.ours.0.word", "maybe", r"ours\[0\].word must be one of"),
        ("entries.0.ours.0.upward", 1, r"ours\[0\].upward must be a bool"),
        ("entries.0.ours.0.std", -1.0, r"ours\[0\].std must be a number >= 0"),
        ("entries.0.ours.0.null", 0.0, r"ours\[0\].null must be null or a finite"),
    ],
)
def test_a_wrong_test_record_is_named(where, value, message):
    data = ledger.family_claims("04_sine", range(5), _toy_family(), "ratio")
    with pytest.raises(ValueError, match=message):
        ledger.check_claims(_set(data, where, value))


def test_chapter_10_concludes_only_what_every_check_keeps():
    """Holm keeps "α=0.5 beats classic" in the restrictive mode, its seed subsets do
    not: the conclusion is "not resolved", as the chapter's summary says."""
    by = {e["claim"]: e for e in computed_maps()["entries"]}
    e = by["restrictive: α=0.5 beats classic α=1 at τ=0.995"]
    assert e["holm"] == "holds" and e["checks"] == {"seed subsets": "not resolved"}
    assert e["conclusion"] == "not resolved"
    e = by["unconstrained: best cell beats the paper's (paper / best)"]
    assert e["checks"]["fresh seeds"] == "reversed"
    for e in by.values():
        kept = all(w == e["holm"] for w in e["checks"].values())
        assert e["conclusion"] == (e["holm"] if kept else "not resolved"), e


# ------------------------------------------------------- files follow the analysis
def test_every_saved_file_is_a_chapter_that_computes_it():
    saved = sorted(p.stem for p in CLAIMS.glob("*.json"))
    assert saved == sorted(COMPUTE), "a claims file without its check here"
    for stem in saved:
        claims = ledger.load_claims(CLAIMS / f"{stem}.json")
        chapter = claims["chapter"]
        # a chapter's second family has a file of its own, named after it, and a title
        assert stem == chapter or (stem.startswith(chapter + "_") and "part" in claims)
        assert (BOOK / f"{chapter}.ipynb").is_file()


def _notebook(stem: str) -> Path:
    """The notebook that saves the claims file ``stem``."""
    return BOOK / f"{ledger.load_claims(CLAIMS / f'{stem}.json')['chapter']}.ipynb"


@pytest.mark.parametrize("chapter", sorted(COMPUTE))
def test_the_saved_claims_are_what_the_analysis_computes_now(chapter):
    """A chapter whose rule or results changed and was not re-executed fails here."""
    saved = ledger.load_claims(CLAIMS / f"{chapter}.json")
    stale = f"stale: re-execute {chapter} (python -m bijepa_nb.book --only ...)"
    differs = _differences(saved, COMPUTE[chapter](saved))
    assert not differs, f"{stale}: {differs[:5]}"


def _differences(a, b, where="", rel=1e-9) -> list[str]:
    """Where two JSON-shaped values differ; floats within ``rel`` agree (numpy and
    scipy builds differ in the last bit of a t-quantile or a log-mean)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}.{k}", rel)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b))
            for d in _differences(x, y, f"{where}[{i}]", rel)
        ]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        if a == b or abs(a - b) <= rel * max(abs(a), abs(b)):
            return []
    elif a == b:
        return []
    return [f"{where}: {a!r} != {b!r}"]


def test_differences_ignore_the_last_bits_only():
    a = {"x": [{"v": 0.1 + 0.2, "w": "holds"}]}
    assert _differences(a, {"x": [{"v": 0.3, "w": "holds"}]}) == []
    assert _differences(a, {"x": [{"v": 0.31, "w": "holds"}]}) == [
        ".x[0].v: 0.30000000000000004 != 0.31"
    ]
    assert _differences(a, {"x": [{"v": 0.3, "w": "reversed"}]}) != []
    assert _differences(a, {"x": []}) != [] and _differences(a, {"y": []}) != []


# ------------------------------------------- printed verdicts agree with the files
def _outputs(notebook: Path, marker: str) -> str:
    """The text (stream and Markdown) outputs of the code cell whose source holds
    ``marker``."""
    cells = json.loads(notebook.read_text())["cells"]
    (cell,) = [
        c for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"])
    ]
    parts = []
    for o in cell.get("outputs", []):
        parts.append("".join(o.get("text", "")))
        parts.append("".join(o.get("data", {}).get("text/markdown", "")))
    return "\n".join(parts)


def _table_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown tables in ``text``, cells stripped."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return [r for r in rows if r]


def _counts_line(notebook: Path, marker: str) -> dict:
    text = _outputs(notebook, marker)
    (found,) = re.findall(r"concluded: (\{.*\})", text)
    return json.loads(found.replace("'", '"'))


def disagreements_11(notebook: Path, claims: dict) -> list[str]:
    """Where chapter 11's printed family table (claim, ..., alone, family), its tables
    against the trivial baselines (the family's word per cell) and its count line
    differ from its saved claims."""
    by = {e["claim"]: e for e in claims["entries"]}
    out = []
    rows = _table_rows(_outputs(notebook, "markdown_table(header, bijepa_rows)"))
    for claim, *_, alone, family in rows[1:]:
        e = by.get(claim)
        if e is None or (e["direction"], e["holm"]) != (alone, family):
            out.append(f"family table: {claim}: {alone}, {family}")
    studies = {
        "sine": json.loads((RESULTS / "peers_sine.json").read_text()),
        "Lorenz": json.loads((RESULTS / "peers_lorenz.json").read_text()),
    }
    text = _outputs(notebook, "ap.baseline_rows(res, task, judged)")
    for table in text.split("\n\n"):
        rows = _table_rows(table)
        if not rows:
            continue
        task = rows[0][0].split(":")[0]
        res = studies[task]
        names = {res["objectives"][n]["label"]: n for n in res["results"]}
        for label, *cells in rows[1:]:
            for base, cell in zip(ap.trivial(res), cells):
                claim = f"{task}: {names[label]} beats {base}"
                if by[claim]["holm"] != cell.split(" (x")[0]:
                    out.append(f"baseline table: {claim}: {cell}")
    counts = _counts_line(notebook, "ap.ledger_claims(")
    if counts != ledger.claims_word_counts(claims):
        out.append(f"count line: {counts}")
    return out


def disagreements_12(notebook: Path, claims: dict) -> list[str]:
    """Where chapter 12's printed table of every verdict (regime, JEPA, baseline, ...,
    word, after Holm) and its count line differ from its saved claims."""
    by = {e["claim"]: e for e in claims["entries"]}
    marker = '["regime", "JEPA", "baseline", "intervals (A, B / probe)"'
    rows = _table_rows(_outputs(notebook, marker))[1:]
    out = [] if len(rows) == len(by) else [f"{len(rows)} rows, {len(by)} claims"]
    for regime, jepa, base, _, word, holm in rows:
        e = by.get(f"{regime}: {jepa} beats {base}")
        if e is None or (e["direction"], e["holm"]) != (word, holm):
            out.append(f"verdict table: {regime}: {jepa} beats {base}: {word}, {holm}")
    counts = _counts_line(notebook, "ar.ledger_claims(")
    if counts != ledger.claims_word_counts(claims):
        out.append(f"count line: {counts}")
    return out


def disagreements_10(notebook: Path, claims: dict) -> list[str]:
    """Where chapter 10's printed family table (test, ratio, verdict, with Holm) and
    its count line differ from its saved claims."""
    by = {e["claim"]: e for e in claims["entries"]}
    marker = '["test", "ratio [95% interval]", "verdict", "with Holm"]'
    rows = _table_rows(_outputs(notebook, marker))[1:]
    out = [] if len(rows) == len(by) else [f"{len(rows)} rows, {len(by)} claims"]
    for claim, _, word, holm in rows:
        e = by.get(claim)
        if e is None or (e["direction"], e["holm"]) != (word, holm):
            out.append(f"family table: {claim}: {word}, {holm}")
    counts = _counts_line(notebook, "maps.ledger_claims(")
    if counts != ledger.claims_word_counts(claims):
        out.append(f"count line: {counts}")
    return out


def _printed_rows(
    notebook: Path, claims: dict, marker: str = "Markdown(ledger.chapter_rows(rows))"
) -> list[str]:
    """Where the chapter's printed ledger rows (``ledger.chapter_rows``, in the cell
    whose source holds ``marker``) and count line differ from its saved claims, row
    by row."""
    text = _outputs(notebook, marker)
    want = ledger.chapter_rows(claims)
    out = []
    if want.split("|")[0].strip() not in text.split("|")[0]:
        out.append("the rows' preamble (seeds, family, measures)")
    printed = {r[0]: r for r in _table_rows(text)[1:]}
    for row in _table_rows(want)[1:]:
        if printed.pop(row[0], None) != row:
            out.append(f"ledger row: {row[0]}")
    out += [f"printed, not saved: {c}" for c in printed]
    counts = _counts_line(notebook, marker)
    if counts != ledger.claims_word_counts(claims):
        out.append(f"count line: {counts}")
    return out


def _holm_table_rows(notebook: Path, claims: dict) -> list[str]:
    """Where the chapter's Holm table (claim, tests, alone, after Holm;
    ``report.holm_table``) differs from its saved claims."""
    by = {e["claim"]: e for e in claims["entries"]}
    rows = _table_rows(_outputs(notebook, "report.holm_table(family)"))[1:]
    out = [] if len(rows) == len(by) else [f"{len(rows)} rows, {len(by)} claims"]
    for claim, n, alone, holm in rows:
        e = by.get(claim)
        if e is None or (e["direction"], e["holm"], len(e["ours"])) != (
            alone,
            holm,
            int(n),
        ):
            out.append(f"Holm table: {claim}: {alone}, {holm}")
    return out


def disagreements_2_to_5(notebook: Path, claims: dict) -> list[str]:
    return _printed_rows(notebook, claims) + _holm_table_rows(notebook, claims)


def disagreements_06(notebook: Path, claims: dict) -> list[str]:
    """Chapter 6 prints the words Holm changes (in its words: better, worse, no
    difference) and how many keep theirs."""
    from bijepa_nb.analysis.results import LEDGER_WORD

    by = {e["claim"]: e for e in claims["entries"]}
    out = _printed_rows(notebook, claims)
    marker = "holm6 = mnist_holm(res, MODELS)"
    changed = {r[0]: r for r in _table_rows(_outputs(notebook, marker))[1:]}
    for claim, e in by.items():
        if (e["direction"] != e["holm"]) != (claim in changed):
            out.append(f"Holm's changes: {claim}")
        elif claim in changed:
            _, alone, holm = changed[claim]
            if (LEDGER_WORD[alone], LEDGER_WORD[holm]) != (e["direction"], e["holm"]):
                out.append(f"Holm's changes: {claim}: {alone}, {holm}")
    return out


def disagreements_08(notebook: Path, claims: dict) -> list[str]:
    """Chapter 8 prints each claim's word and its word with Holm, one line each."""
    by = {e["claim"]: e for e in claims["entries"]}
    out = _printed_rows(notebook, claims)
    lines = [
        ln
        for ln in _outputs(notebook, "-> with Holm:").splitlines()
        if " -> with Holm: " in ln
    ]
    if len(lines) != len(by):
        out.append(f"{len(lines)} Holm lines, {len(by)} claims")
    for ln in lines:
        alone, rest = ln.split(" -> with Holm: ")
        holm, text = rest[:14].strip(), rest[15:]
        e = by.get(text)
        if e is None or (e["direction"], e["holm"]) != (alone.strip(), holm):
            out.append(f"Holm lines: {text}: {alone.strip()}, {holm}")
    return out


def disagreements_08_raw(notebook: Path, claims: dict) -> list[str]:
    """Chapter 8's own claims: its printed rows, and the word of each row of its
    table of the raw-data comparisons (experiment, ..., test, verdict)."""
    by = {e["claim"]: e for e in claims["entries"]}
    out = _printed_rows(notebook, claims, "Markdown(ledger.chapter_rows(raw_rows))")
    rows = _table_rows(_outputs(notebook, "extra = raw_data_comparison("))[1:]
    if len(rows) != len(by):
        out.append(f"{len(rows)} table rows, {len(by)} claims")
    for exp, _, _, base, _, _, word in rows:
        claim = f"{exp}: JEPA beats {base}"
        e = by.get(claim)
        if e is None or e["direction"] != word:
            out.append(f"raw-data table: {claim}: {word}")
    return out


CHECKS = {
    "02_bijepa": disagreements_2_to_5,
    "03_stability": disagreements_2_to_5,
    "04_sine": disagreements_2_to_5,
    "05_lorenz": disagreements_2_to_5,
    "06_mnist": disagreements_06,
    "08_verdict": disagreements_08,
    "08_verdict_raw": disagreements_08_raw,
    "10_maps": disagreements_10,
    "11_peers": disagreements_11,
    "12_regimes": disagreements_12,
}


@pytest.mark.parametrize("chapter", sorted(CHECKS))
def test_the_chapters_printed_verdicts_agree_with_its_saved_claims(chapter):
    claims = ledger.load_claims(CLAIMS / f"{chapter}.json")
    assert CHECKS[chapter](_notebook(chapter), claims) == []


@pytest.mark.parametrize("chapter", sorted(CHECKS))
def test_a_made_up_disagreement_is_caught(chapter, tmp_path):
    """Flip one saved word: the check of the printed verdicts fires, and so does the
    check against the analysis."""
    claims = ledger.load_claims(CLAIMS / f"{chapter}.json")
    i = next(i for i, e in enumerate(claims["entries"]) if e["holm"] == "holds")
    tampered = _set(claims, f"entries.{i}.holm", "reversed")
    path = ledger.save_claims(tmp_path / f"{chapter}.json", tampered)
    found = CHECKS[chapter](_notebook(chapter), ledger.load_claims(path))
    assert any(claims["entries"][i]["claim"] in d for d in found), found
    assert _differences(tampered, COMPUTE[chapter](tampered))


def test_chapter_9s_printed_conclusions_are_the_ledgers():
    """Chapter 9's summary page prints every claim's words and conclusion; the ledger
    reads them with ``beyond.conclusions`` from the same two files."""
    rows = beyond.conclusions(
        RESULTS / "beyond_verdicts.json", RESULTS / "beyond_replication.json"
    )
    nb = BOOK / "09_beyond.ipynb"
    printed = _table_rows(_outputs(nb, "beyond.conclusions(verdicts_path"))[1:]
    assert len(printed) == len(rows)
    for (_, claim, w1, w2, end), mine in zip(printed, rows):
        assert [claim, w1, w2, end] == [mine[0].split(": ", 1)[1], *mine[1:3], mine[5]]
    holm = {r[0]: r[-1] for r in _table_rows(_outputs(nb, "holm_rows = beyond"))[1:]}
    assert holm == {r[0]: r[3] for r in rows if r[3]}


# ------------------------------------------------------------------ the page
def _book_copy(tmp_path: Path) -> Path:
    """The files the ledger page reads, copied below ``tmp_path``."""
    book = tmp_path / "book"
    shutil.copytree(RESULTS, book / "results")
    for nb in BOOK.glob("*.ipynb"):
        shutil.copy(nb, book / nb.name)
    return book


def test_the_page_shows_every_saved_claim_and_follows_the_files(tmp_path):
    page = (BOOK / "ledger.md").read_text()
    assert "## Every chapter's claims" in page
    for path in sorted(CLAIMS.glob("*.json")):
        claims = ledger.load_claims(path)
        assert f"]({claims['chapter']}.ipynb)" in page
        for e in claims["entries"]:
            assert f"| {e['claim']} |" in page, e["claim"]
    book = _book_copy(tmp_path)
    assert ledger.own_claims_page(book) in page
    path = book / "results" / ledger.CLAIMS_DIR / "10_maps.json"
    saved = ledger.load_claims(path)
    other = "reversed" if saved["entries"][0]["conclusion"] != "reversed" else "holds"
    tampered = _set(saved, "entries.0.conclusion", other)
    ledger.save_claims(path, tampered)
    assert ledger.own_claims_page(book) not in page, "a changed file changes the page"


def test_the_page_links_every_row_to_its_chapter():
    own = (BOOK / "ledger.md").read_text().split("## Every chapter's claims")[1]
    for part in own.split("### ")[1:]:
        links = set(re.findall(r"\]\((\d\d[\w]*)\.ipynb\)", part))
        assert links, part[:60]
        assert all((BOOK / f"{stem}.ipynb").is_file() for stem in links)
    rows = [ln for ln in own.splitlines() if ln.startswith("| [9.")]
    assert rows and all(re.match(r"\| \[9\.\d\]\(09_\d_\w+\.ipynb\)", r) for r in rows)


def test_every_chapter_that_saves_claims_saves_none_in_quick_mode():
    """A smoke run recomputes tiny studies: it must not overwrite the committed file.
    The parameter points at the chapter's own file, and quick mode empties it."""
    for stem in COMPUTE:
        chapter = _notebook(stem).stem
        param = (
            "claims_path"
            if stem == chapter
            else f"{stem[len(chapter) + 1 :]}_claims_path"
        )
        cells = json.loads(_notebook(stem).read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        (params,) = [
            s
            for s, c in zip(code, [c for c in cells if c["cell_type"] == "code"])
            if "parameters" in c.get("metadata", {}).get("tags", [])
        ]
        want = f'{param}: str = "results/claims/{stem}.json"'
        assert want in params, stem
        check = code[code.index(params) + 1]
        quick = check[check.index("if QUICK:") :]
        assert re.search(rf"\b{param} = .*\"\"", quick), stem
        (saving,) = [s for s in code if f"ledger.save_claims({param}" in s]
        assert f"if {param}:" in saving, stem


def _saved_run(path, seeds, words, tests):
    path.write_text(json.dumps({"seeds": seeds, "verdicts": words, "tests": tests}))
    return path


def test_chapter_9s_conclusion_needs_both_runs_and_holm(tmp_path):
    def rec(word, p):
        return {"word": word, "mean": 2.0, "low": 1.5, "high": 2.5, "n": 5, "p": p}

    tests = {f"1 x: filler {k}": rec("holds", 1e-6) for k in range(5)}
    first = {
        **tests,
        "1 x: strong": rec("holds", 1e-6),
        "1 x: weak": rec("holds", 0.03),  # second largest p: Holm doubles it
        "1 x: none": rec("does not hold", 0.9),
        "1 x: flips": rec("holds", 1e-6),
    }
    second = {**first, "1 x: flips": rec("does not hold", 0.5)}
    words = lambda t: {c: r["word"] for c, r in t.items()} | {"6: (a) reading": "x"}
    a = _saved_run(tmp_path / "a.json", [0, 1], words(first), first)
    b = _saved_run(tmp_path / "b.json", [2, 3], words(second), second)
    ends = {r[0]: r for r in beyond.conclusions(a, b)}
    assert ends["1 x: strong"][1:] == ["holds"] * 5
    assert ends["1 x: weak"][3:] == ["does not hold", "does not hold", "does not hold"]
    assert ends["1 x: flips"][2] == "does not hold"
    assert ends["1 x: flips"][-1] == "not resolved"  # the seed sets disagree
    assert ends["6: (a) reading"][3:] == ["", "", "x"]  # untested: no Holm word
    same = _saved_run(tmp_path / "c.json", [0, 1], words(first), first)
    with pytest.raises(ValueError, match="replication_path must hold other seeds"):
        beyond.conclusions(a, same)
