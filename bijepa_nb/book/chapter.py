"""Chapter plumbing: quick mode, run-time setup, Colab detection, parameter checks.

Every chapter calls ``quick_mode(quick)`` in its hidden validation cell and ``setup(seed)``
in its setup cell, so all chapters behave alike on a CPU, on CUDA and under nbval.
"""

from __future__ import annotations

import html
import os
import random
import sys
from typing import Any

import numpy as np
import torch
from IPython import get_ipython
from IPython.display import display

from ..analysis import plotting
from ..core.config import (  # noqa: F401 (re-exported for chapters)
    check_choice,
    check_float,
    check_int,
    resolve_device,
)

QUICK_ENV = "BIJEPA_QUICK"
#: Overrides the ``base_url`` of :func:`fetch_results` (a mirror, or a local server in
#: tests/test_colab.py); the chapters' cells keep the address derived from _config.yml.
RESULTS_URL_ENV = "BIJEPA_RESULTS_URL"


def quick_mode(quick: bool = False) -> bool:
    """True when the chapter should shrink its run to seconds: ``quick`` or BIJEPA_QUICK=1."""
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {type(quick).__name__} {quick!r}")
    env = os.environ.get(QUICK_ENV, "").strip().lower()
    if env not in ("", "0", "1", "true", "false"):
        raise ValueError(f"{QUICK_ENV} must be 0 or 1, got {os.environ[QUICK_ENV]!r}")
    return quick or env in ("1", "true")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup(seed: int, device: str = "auto", threads: int = 1) -> torch.device:
    """Seed python, numpy and torch, set CPU threads, pick the device, apply the book's
    figure style (``plotting.style``); prints what it chose."""
    check_int("seed", seed, 0)
    check_int("threads", threads, 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    plotting.style()
    show_environment(environment_line(dev))
    return dev


def environment_line(dev: torch.device) -> str:
    """One line naming the device and the torch version: ``device: cpu (CPU), torch 2.x``."""
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    return f"device: {dev} ({name}), torch {torch.__version__}"


def show_environment(line: str) -> None:
    """In a notebook, ``line`` as a collapsed note ("Run environment", closed until a
    reader opens it: it is the same on every page); elsewhere, printed."""
    if get_ipython() is None:
        print(line)
        return
    note = (
        '<details class="bijepa-env"><summary>Run environment</summary>'
        f"<code>{html.escape(line)}</code></details>"
    )
    display({"text/html": note, "text/plain": line}, raw=True)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:,.0f} s"


def check_run_length(
    name: str,
    value: Any,
    low: int,
    high: int,
    seconds_each: float,
    unit: str = "step",
    what: str = "the chapter",
) -> None:
    """Raise unless ``value`` is an int in ``[low, high]``, naming ``name`` and the range.

    A value above ``high`` is refused with the time it would take at ``seconds_each``
    seconds per ``unit`` (measured roughly on the 2-core build machine's CPU; each
    chapter's validation cell says what it measured), so ``num_steps=10**9`` fails at
    once, saying why: "num_steps must be an integer in [1, 200000], got 1000000000: at
    about 0.003 s per step on the 2-core build CPU the chapter would take about 35 days
    (200000 steps: about 10 minutes)".
    """
    check_int(name, value)
    check_float("seconds_each", seconds_each, 0.0, low_open=True)
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high}) for {name}")
    if low <= value <= high:
        return
    message = f"{name} must be an integer in [{low}, {high}], got {value}"
    if value > high:
        message += (
            f": at about {seconds_each:g} s per {unit} on the 2-core build CPU {what} "
            f"would take about {_duration(value * seconds_each)} ({high} {unit}s: "
            f"about {_duration(high * seconds_each)})"
        )
    raise ValueError(message)


def fetch_results(base_url: str, names: list[str]) -> list[str]:
    """Download each of ``names`` (paths below book/, e.g. ``results/maps_sine.json``)
    from ``base_url`` (the raw address of the repository's book/ folder, which the
    chapters' Colab cells derive from ``_config.yml``) into the same relative path,
    unless the file is already there. Used on Colab, where only the package is
    installed. A failed download is printed, not raised: the chapter then says the file
    is missing or recomputes it. Returns the names downloaded.

    The environment variable ``BIJEPA_RESULTS_URL``, when set, replaces ``base_url``.
    """
    import pathlib
    import urllib.request

    base_url = os.environ.get(RESULTS_URL_ENV) or base_url
    if not base_url.endswith("/"):
        raise ValueError(f"base_url must end with '/', got {base_url!r}")
    fetched = []
    for name in names:
        dest = pathlib.Path(name)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            urllib.request.urlretrieve(base_url + name, dest)
            fetched.append(name)
        except OSError as err:
            print(f"could not fetch {name} from {base_url}: {err}")
    return fetched


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(
            f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}"
        )


def check_seeds(name: str, seeds: Any) -> None:
    """A non-empty list of distinct non-negative integer seeds."""
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise TypeError(f"{name} must be a non-empty list of integers, got {seeds!r}")
    for s in seeds:
        check_int(f"{name}[...]", s, 0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} must not repeat a seed, got {list(seeds)}")


BATCH_ENV = "BIJEPA_BATCH"


def interactive() -> bool:
    """False in quick mode and in batch execution (``python -m bijepa_nb.book`` sets BIJEPA_BATCH=1):
    chapters then hide progress bars, which would be stale widgets in the rendered book."""
    return not (quick_mode() or os.environ.get(BATCH_ENV, "") == "1")
