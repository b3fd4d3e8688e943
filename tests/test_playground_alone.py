"""Chapter 7 run alone, as a reader's copy without ``results/maps_sine.json``, finishes.

The live-only panel (``bijepa_nb.book.widgets.playground``) used to draw its first figure inside
``with Output():``. A headless executor (nbclient, so papermill and ``python -m
bijepa_nb.book``) answers every output routed into an Output widget with a comm message
on the shell channel while it waits on that channel for the cell's reply; on a busy
machine that wait missed the reply and the cell sat idle until its timeout (forever by
default). The panel now sets ``Output.outputs`` instead, which sends nothing back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from bijepa_nb.book import widgets

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "book" / "07_playground.ipynb"


def test_chapter_7_alone_without_precomputed_runs_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbclient.output_widget
    import papermill as pm

    nb = tmp_path / CHAPTER.name
    shutil.copyfile(CHAPTER, nb)  # alone: no results/ beside it
    # The kernel inherits this: quick mode, and this checkout's package.
    monkeypatch.setenv("BIJEPA_QUICK", "1")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPO)] + ([path] if path else []))
    )
    sent: list[dict] = []
    publish = nbclient.output_widget.OutputWidget._publish_msg

    def record(self, msg_type, data=None, **kw):
        sent.append({"msg_type": msg_type, "data": data})
        return publish(self, msg_type, data=data, **kw)

    monkeypatch.setattr(nbclient.output_widget.OutputWidget, "_publish_msg", record)

    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(nb),
        str(out),
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=60,
    )

    # The cause, checked on every run: nothing is sent to the kernel on the shell
    # channel while a cell runs (the old panel sent one message per run, every time).
    assert sent == []
    done = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in done.cells for o in c.get("outputs", []))
    assert "No precomputed runs: results/maps_sine.json does not exist" in text
    # The symptom: a missed reply shows as a cell that waited out its whole timeout.
    slow = {
        i: c.metadata.papermill.duration
        for i, c in enumerate(done.cells)
        if c.cell_type == "code" and (c.metadata.papermill.duration or 0) > 30
    }
    assert slow == {}, f"cells that took over 30 s (index: seconds): {slow}"
    # The live-only panel drew its first figure into its Output widget.
    state = done.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [
        o
        for m in state.values()
        if m["model_name"] == "OutputModel"
        for o in m["state"]["outputs"]
    ]
    images = ("image/png", "image/svg+xml")  # plotting.figure_output picks one
    assert any(m in o.get("data", {}) for o in outputs for m in images), outputs


def test_live_panel_draws_at_once_and_on_every_change(monkeypatch) -> None:
    """``playground`` trains once for its initial values, again on each change, and a
    failed retrain on a change is shown in the status line instead of raised."""
    calls: list[dict] = []

    def fake_retrain(**kw):
        calls.append(kw)
        if kw["alpha"] == 0.0:
            raise ValueError("no such run")
        print(f"trained alpha={kw['alpha']}")
        return {"seconds": 0.25}

    monkeypatch.setattr(widgets, "retrain", fake_retrain)
    panel = widgets.playground("cpu", 0.5, 0.995, "expressive", 100, 3)
    (left, right), out = panel.children[0].children, panel.children[1]
    alpha, status = left.children[0], right.children[2]
    assert calls == [
        {
            "alpha": 0.5,
            "ema_momentum": 0.995,
            "mode": "expressive",
            "num_steps": 100,
            "seed": 3,
            "device": "cpu",
        }
    ]
    assert out.outputs[0]["text"] == "trained alpha=0.5\n"
    assert status.value == "retrained in 0.2 s"
    alpha.value = 0.75
    assert calls[-1]["alpha"] == 0.75 and len(calls) == 2
    assert out.outputs[0]["text"] == "trained alpha=0.75\n"
    alpha.value = 0.0
    assert "retrain failed: ValueError: no such run" in status.value
