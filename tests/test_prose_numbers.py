"""Every number a chapter's prose quotes comes from somewhere a reader can check.

A number in a markdown cell must appear in one of: the chapter's stored outputs (what
its cells printed or displayed), its papermill ``parameters`` cell, the registry
(``bijepa_nb.experiments.registry``: the paper's numbers and the configurations), or
the paper's text. A quoted number may be a rounding of its source ("2.7" for a printed
"2.74"); the sign is ignored ("-0.34" and "−0.34" match "-0.3404").

What is not a quoted result is left out by explicit rules, the same for every chapter:

- code (fenced blocks and inline spans), LaTeX (``$...$``, ``$$...$$``), link targets
  and bare addresses, and the References section (a heading or a bold line);
- numbers that name a place: "Section 4.3", "§3.2", "Figure 4", "Table 2", "Eq. 8",
  "Eqs. 6–8", "Chapter 5", "Appendix B.3", "Experiment 2", "Exercise 1", list markers;
- years in citations: "(2026)", "Roy & Vetterli, 2007)", "Holm 1979", "et al. 1986";
- the level of an interval: "95% interval", "a 95% t-interval over seeds";
- sizes written as products: "28×14", "2x2";
- integers up to 10 ("two seeds", "5 seeds", "seeds 5–9");
- numbers glued to a name ("float32", "RK4", "3D", "06_mnist"); "60k" reads 60,000.

The paper's text is read from ``BIJEPA_PAPER_TEXT`` (default: ``../shared/paper/
bijepa-paper.txt`` beside the repository); without it the test skips here and fails in
CI. Every chapter and section page of ``_toc.yml`` is held to it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import nbformat
import pytest

from bijepa_nb.book import runner as book
from bijepa_nb.experiments import registry

ROOT = Path(__file__).resolve().parents[1]
PAPER_TEXT = Path(
    os.environ.get(
        "BIJEPA_PAPER_TEXT", ROOT.parent / "shared" / "paper" / "bijepa-paper.txt"
    )
)

# ------------------------------------------------------------------ what is left out
_PLACE = (
    r"(?:§|\b(?:Sections?|Figs?\.|Figures?|Tables?|Eqs?\.|Equations?|Chapters?"
    r"|Appendix|Appendices|Experiments?|Exercises?|Steps? of Algorithm)\s*)"
)
_REF = r"[A-Z]?\d+(?:\.\d+)*[a-z]?"
_SEP = r"\s*(?:[–-]|,|and|or|&)\s*"
LEFT_OUT: dict[str, re.Pattern[str]] = {
    name: re.compile(rx, re.IGNORECASE if name == "a place" else 0)
    for name, rx in {
        "fenced code": r"```.*?```",
        "inline code": r"`[^`]*`",  # a span may wrap onto the next line
        "display LaTeX": r"\$\$.*?\$\$",
        "inline LaTeX": r"\$[^$\n]+\$",
        "a link target": r"\]\([^)]*\)",
        "an address": r"https?://\S+",
        "a place": rf"{_PLACE}{_REF}(?:{_SEP}{_REF})*",
        "a list marker": r"(?m)^\s*\d+[.)]\s",
        "a year in a citation": (
            r"\((?:19|20)\d\d\)|,\s*(?:19|20)\d\d\)"
            r"|(?:\b[A-Z][a-z]+|\bet al\.),?\s(?:19|20)\d\d\b"
        ),
        "the level of an interval": (
            r"\b\d\d(?:\.\d+)?%(?=[\w\s-]{0,40}?\b(?:intervals?|bands?|CI)\b)"
        ),
        "a product of sizes": r"\b\d+\s*[×x]\s*\d+(?:\s*[×x]\s*\d+)*\b",
    }.items()
}
#: a References section: a heading ("## References") or a bold line ("**References**")
_REFERENCES = re.compile(
    r"(?ms)^(?:#+\s*|\*\*)References\b.*?(?=^#+\s|^\*\*\w[^*\n]*\*\*\s*$|\Z)"
)
#: a number: optional sign, digits with optional thousands commas, decimals, exponent
_NUMBER = re.compile(
    r"(?<![\w.,])[-−+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-−+]?\d+)?"
)


def _value(token: str) -> float:
    return abs(float(token.replace(",", "").replace("−", "-")))


def _decimals(token: str) -> int:
    mantissa = re.split(r"[eE]", token)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def numbers_in(text: str, strict: bool = True) -> list[tuple[str, float]]:
    """(token, value) of every number in ``text``. ``strict`` (prose): a number glued
    to a following letter is a name and skipped, except "k" (thousands) and "x"
    (times); loose (sources): every run of digits counts."""
    out = []
    for m in _NUMBER.finditer(text):
        tok, nxt = m.group(), text[m.end() : m.end() + 2]
        value = _value(tok)
        if nxt[:1] == "k" and not nxt[1:2].isalnum():
            value *= 1000
        elif strict and (nxt[:1].isalpha() or nxt[:1] == "_") and nxt[:1] != "x":
            continue
        elif strict and nxt[:1] == "x" and nxt[1:2].isalnum():
            continue
        out.append((tok, value))
    if not strict:  # digits after letters too: "rk4", "seed0", "t20"
        out += [
            (t, _value(t)) for t in re.findall(r"(?<=[A-Za-z_])\d+(?:\.\d+)?", text)
        ]
    return out


def prose_of(source: str) -> str:
    """A markdown cell's text with everything ``LEFT_OUT`` removed."""
    text = _REFERENCES.sub(" ", source)
    for rx in LEFT_OUT.values():
        text = rx.sub(" ", text)
    return text


def quoted(source: str) -> list[tuple[str, float]]:
    """The numbers a markdown cell quotes, after the rules: integers up to 10 go."""
    return [
        (tok, v)
        for tok, v in numbers_in(prose_of(source))
        if not (v <= 10 and v == int(v) and _decimals(tok) == 0)
    ]


# ------------------------------------------------------------------ where they come from
def _flatten(obj, out: list[float]) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        for v in obj.values():
            _flatten(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _flatten(v, out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out.append(abs(float(obj)))


def registry_numbers() -> list[float]:
    """Every number of the registry's entries: the paper's numbers, architectures,
    optimisation settings, probe budgets and data configurations."""
    out: list[float] = []
    _flatten(registry.EXPERIMENTS, out)
    _flatten(registry.VARIANTS, out)
    return out


def output_text(nb: nbformat.NotebookNode) -> str:
    """What the chapter's cells printed or displayed, as text."""
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            for mime, data in o.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(data if isinstance(data, str) else "".join(data))
    return "\n".join(parts)


def sources(nb: nbformat.NotebookNode, paper: str) -> list[float]:
    params = "\n".join(
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])
    )
    text = "\n".join((output_text(nb), params, paper))
    return [v for _, v in numbers_in(text, strict=False)] + registry_numbers()


def supported(token: str, value: float, pool: list[float]) -> bool:
    """``value`` is in ``pool``, or is a value of it rounded to ``token``'s decimals."""
    d = _decimals(token)
    tol = 0.5 * 10**-d + 1e-9 * max(1.0, value)
    return any(abs(s - value) <= tol for s in pool)


def unsupported_numbers(path: Path, paper: str) -> list[str]:
    """'cell N: token' for every quoted number of ``path`` that no source supports."""
    nb = nbformat.read(path, as_version=4)
    pool = sources(nb, paper)
    return [
        f"cell {i}: {tok}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for tok, v in quoted(cell.source)
        if not supported(tok, v, pool)
    ]


# ------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def paper() -> str:
    if not PAPER_TEXT.exists():
        msg = f"paper text not found at {PAPER_TEXT}: set BIJEPA_PAPER_TEXT"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return PAPER_TEXT.read_text(encoding="utf-8")


@pytest.mark.parametrize("nb", book.chapters(), ids=lambda p: p.stem)
def test_prose_numbers_have_a_source(nb: Path, paper: str) -> None:
    missing = unsupported_numbers(nb, paper)
    assert not missing, f"{nb.stem}: numbers without a source: {missing}"


def _notebook(tmp_path: Path, prose: str, printed: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("num_steps: int = 2000  # training steps")
    params.metadata["tags"] = ["parameters"]
    cell = nbformat.v4.new_code_cell("print(gap)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells = [params, cell, nbformat.v4.new_markdown_cell(prose)]
    path = tmp_path / "99_made_up.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_made_up_number_fails(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "BiJEPA wins by 4.56 points.", "gap 1.23 [0.5, 2.01]")
    assert unsupported_numbers(path, paper="") == ["cell 2: 4.56"]


def test_printed_rounded_parameter_registry_and_paper_numbers_pass(
    tmp_path: Path,
) -> None:
    prose = (
        "The gap is 1.2 points, [−0.50, 2.0]; after 2,000 steps at learning rate"
        " 0.0005, against the paper's 0.0937 and its 37.5%."
    )
    path = _notebook(tmp_path, prose, "gap 1.23 [-0.5, 2.01]")
    assert unsupported_numbers(path, paper="as 37.5% of ...") == []
    assert unsupported_numbers(path, paper="") == ["cell 2: 37.5"]


def test_the_rules_leave_out_places_code_latex_years_and_names() -> None:
    prose = (
        "See Figure 12, Table 3, §4.3, Eqs. 6–8 and Appendix B.3; Huang (2026) and"
        " Holm 1979, Gasser et al. 1986; 95% intervals; `lr = 0.37` and $10^{-37}$; 28×14 images, 7 seeds, float32,"
        " RK4 and [the page](https://example.org/77.html).\n\n1. An exercise.\n\n"
        "## References\n\n- E. N. Lorenz (1963). J. Atmos. Sci. 20, 130–141."
    )
    assert quoted(prose) == []
    assert [t for t, _ in quoted("3.76x and 60k and 2,350 steps")] == [
        "3.76",
        "60",
        "2,350",
    ]
    assert quoted("60k")[0][1] == 60_000


def test_wrapped_code_split_citations_and_a_bold_references_line_are_left_out() -> None:
    prose = (
        "Run `python -m bijepa_nb.peers sine --steps 6000\n--out /tmp/x.json` now; two"
        " couplings (RealNVP, Dinh et al.\n2017).\n\n**References**\n\n"
        "- T. Gneiting (2007). *JASA* 102(477).\n- D. Hand (2001). *ML* 45."
    )
    assert quoted(prose) == []
    # prose after the references (a new bold heading) is read again
    assert [t for t, _ in quoted(prose + "\n\n**Summary**\n\nA gap of 4.56.")] == [
        "4.56"
    ]
