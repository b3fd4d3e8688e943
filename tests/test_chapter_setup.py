"""``chapter.setup``: seeds, threads, device, and the run environment as a collapsed note."""

import torch

from bijepa_nb.book import chapter


def test_setup_reports_the_environment_collapsed(monkeypatch):
    shown = []
    monkeypatch.setattr(chapter, "display", shown.append)
    dev = chapter.setup(3, "cpu")
    assert dev == torch.device("cpu")
    (env,) = shown
    assert repr(env) == f"device: cpu (CPU), torch {torch.__version__}"
    page = env._repr_html_()
    assert page.startswith('<details class="run-environment"><summary>')
    assert "torch " + torch.__version__ in page and "</details>" in page
