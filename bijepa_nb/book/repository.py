"""The book's one repository URL: ``_config.yml`` holds it, the chapters derive from it.

``repository.url`` (``https://github.com/OWNER/NAME``) and ``repository.branch`` in
``_config.yml`` decide three kinds of link in the chapters' sources:

- the "Open in Colab" link of each chapter:
  ``https://colab.research.google.com/github/OWNER/NAME/blob/BRANCH/book/<file>.ipynb``;
- the Colab install cell: ``%pip install -q "bijepa_nb @ git+URL"``, plus ``@BRANCH``
  when the branch is not ``main`` (pip installs the repository's default branch);
- the saved results a chapter downloads on Colab:
  ``https://raw.githubusercontent.com/OWNER/NAME/BRANCH/book/...``.

:func:`mismatches` lists every place that disagrees with ``_config.yml`` (a test keeps
the list empty); :func:`set_repository` rewrites ``_config.yml`` and every derived place,
sources only (outputs are left byte for byte), each file written atomically. From the
command line: ``python -m bijepa_nb.book --set-repository https://github.com/OWNER/NAME
[--branch BRANCH]``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

_PART = r"[A-Za-z0-9_.-]+"
URL_RE = re.compile(rf"https://github\.com/(?P<owner>{_PART})/(?P<name>{_PART})")
BRANCH_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # no "/": links split on it
_END = r"""(?=[\s"')\]]|$)"""

#: The derived links, matching any repository (``Repository`` writes ours).
COLAB_RE = re.compile(
    rf"https://colab\.research\.google\.com/github/{_PART}/{_PART}/blob/"
    rf"(?P<branch>[^\s/]+)/book/(?P<file>{_PART}\.ipynb)"
)
INSTALL_RE = re.compile(
    rf"git\+https://github\.com/{_PART}/{_PART}(?:@[^\s\"']+)?{_END}"
)
RAW_RE = re.compile(
    rf"https://raw\.githubusercontent\.com/{_PART}/{_PART}/[^\s/\"']+/book/"
)


@dataclass(frozen=True)
class Repository:
    """``url``: https://github.com/OWNER/NAME; ``branch``: the branch the links name."""

    url: str
    branch: str = "main"

    def __post_init__(self) -> None:
        m = URL_RE.fullmatch(self.url)
        if m is None or self.url.endswith(".git"):
            raise ValueError(
                "repository URL must look like https://github.com/OWNER/NAME "
                f"(no .git, no trailing slash), got {self.url!r}"
            )
        if not BRANCH_RE.fullmatch(self.branch) or ".." in self.branch:
            raise ValueError(
                "branch must be a branch name of letters, digits, '_', '.' and '-' "
                f"(no '/'), such as main, got {self.branch!r}"
            )

    @property
    def slug(self) -> str:
        return self.url.removeprefix("https://github.com/")

    def colab(self, notebook: str) -> str:
        """The Colab link of ``notebook`` (a file name in book/)."""
        return (
            "https://colab.research.google.com/github/"
            f"{self.slug}/blob/{self.branch}/book/{notebook}"
        )

    @property
    def install(self) -> str:
        """What follows ``bijepa_nb @`` in the install cell."""
        ref = "" if self.branch == "main" else f"@{self.branch}"
        return f"git+{self.url}{ref}"

    @property
    def raw(self) -> str:
        """Prefix of a committed file of book/ as served raw by GitHub."""
        return f"https://raw.githubusercontent.com/{self.slug}/{self.branch}/book/"


def _repository_block(text: str) -> dict[str, tuple[int, int, str]]:
    """Keys of the top-level ``repository:`` mapping of a YAML text: key -> (start, end,
    value) with the value's character span, so it can be replaced keeping comments."""
    m = re.search(r"^repository:[ \t]*\n((?:[ \t]+.*\n?|[ \t]*\n)*)", text, re.M)
    if m is None:
        raise ValueError("_config.yml has no top-level 'repository:' section")
    out = {}
    for km in re.finditer(
        r"^[ \t]+(?P<key>\w+):[ \t]*(?P<value>[^#\n]*?)[ \t]*(?:#.*)?$",
        m.group(1),
        re.M,
    ):
        start = m.start(1) + km.start("value")
        out[km["key"]] = (start, start + len(km["value"]), km["value"].strip("\"'"))
    return out


def read_config(root: Path) -> Repository:
    """The repository declared in ``root/_config.yml``."""
    block = _repository_block((root / "_config.yml").read_text())
    if "url" not in block:
        raise ValueError("_config.yml: 'repository:' has no 'url:'")
    return Repository(block["url"][2], block.get("branch", (0, 0, "main"))[2])


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its folder and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _rewrite(text: str, repo: Repository, notebook: str) -> str:
    """``text`` with every derived link pointing at ``repo``."""
    text = COLAB_RE.sub(lambda m: repo.colab(m["file"]), text)
    text = INSTALL_RE.sub(repo.install, text)
    return RAW_RE.sub(repo.raw, text)


def notebook_problems(path: Path, repo: Repository) -> list[str]:
    """How the sources of notebook ``path`` disagree with ``repo``: a link that is not
    derived from it, a Colab link to another chapter, or a missing Colab link or
    install cell. Empty when they agree."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems, colab, install = [], 0, 0
    for i, cell in enumerate(nb["cells"]):
        src = _source(cell)
        for m in COLAB_RE.finditer(src):
            colab += 1
            if m.group(0) != repo.colab(path.name):
                problems.append(f"cell {i}: Colab link {m.group(0)}")
        for m in INSTALL_RE.finditer(src):
            install += cell["cell_type"] == "code"
            if m.group(0) != repo.install:
                problems.append(f"cell {i}: install {m.group(0)}")
        for m in RAW_RE.finditer(src):
            if m.group(0) != repo.raw:
                problems.append(f"cell {i}: download {m.group(0)}")
    if not colab:
        problems.append("no Colab link")
    if not install:
        problems.append("no install cell (git+URL)")
    return [f"{path.name}: {p} (expected from _config.yml: {repo})" for p in problems]


def mismatches(root: Path, notebooks: list[Path]) -> list[str]:
    """Every place in ``notebooks`` that disagrees with ``root/_config.yml``."""
    repo = read_config(root)
    return [p for nb in notebooks for p in notebook_problems(nb, repo)]


def set_repository(
    root: Path, notebooks: list[Path], url: str, branch: str | None = None
) -> list[Path]:
    """Point ``root/_config.yml`` and every derived link in ``notebooks`` at ``url``
    (and ``branch``; default: keep the configured one). Only cell sources change; a
    file is written (atomically) only when its text changes. Returns the files written.
    """
    config = root / "_config.yml"
    text = config.read_text(encoding="utf-8")
    block = _repository_block(text)
    if "url" not in block:
        raise ValueError("_config.yml: 'repository:' has no 'url:'")
    repo = Repository(url, branch or block.get("branch", (0, 0, "main"))[2])
    edits = {"url": repo.url, "branch": repo.branch}
    if "branch" not in block:  # add it on the line after url:
        line_start = text.rfind("\n", 0, block["url"][0]) + 1
        indent = text[line_start : block["url"][0]].split("url:")[0]
        eol = text.find("\n", block["url"][1])
        eol = len(text) if eol < 0 else eol
        text = text[:eol] + f"\n{indent}branch: {repo.branch}" + text[eol:]
        block = _repository_block(text)
    for key in sorted(edits, key=lambda k: -block[k][0]):  # last span first
        start, end, _ = block[key]
        text = text[:start] + edits[key] + text[end:]
    written = []
    if text != config.read_text(encoding="utf-8"):
        _write_atomic(config, text)
        written.append(config)
    for path in notebooks:
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        changed = False
        for cell in nb["cells"]:
            src = _source(cell)
            new = _rewrite(src, repo, path.name)
            if new != src:
                changed = True
                keep_list = isinstance(cell["source"], list)
                cell["source"] = new.splitlines(keepends=True) if keep_list else new
        if changed:
            out = json.dumps(nb, indent=1, ensure_ascii=False)  # nbformat's layout
            _write_atomic(path, out + "\n" * raw.endswith("\n"))
            written.append(path)
    problems = mismatches(root, notebooks)
    if problems:  # e.g. a notebook without a Colab link: rewritten, still not right
        raise ValueError("after rewriting:\n" + "\n".join(problems))
    return written
