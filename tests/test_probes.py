import torch

from bijepa_nb.core.config import SineConfig, TrainConfig
from bijepa_nb.core.data import SineStream, sine_split
from bijepa_nb.core.models import build_model
from bijepa_nb.core.probes import adam_probe, evaluate, lstsq_probe, protocol_scores
from bijepa_nb.core.training import train
from bijepa_nb.experiments.registry import paper_config


def test_lstsq_recovers_a_known_linear_map():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g)
    w, b = torch.randn(3, 6, generator=g), torch.randn(3, generator=g)
    probe = lstsq_probe(x, x @ w.T + b)
    torch.testing.assert_close(probe.weight, w, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probe.bias, b, atol=1e-5, rtol=1e-5)
    ridge = lstsq_probe(x, x @ w.T + b, ridge=1e4)
    assert ridge.weight.norm() < 0.5 * w.norm()  # the ridge penalty shrinks the weights


def test_adam_probe_fits_a_linear_map():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 4, generator=g)
    y = x @ torch.tensor([[1.0, -2.0, 0.5, 0.0]]).T + 0.3
    probe = adam_probe(x, y, epochs=300, lr=0.05)
    assert probe.mse(x, y) < 1e-3


def test_protocols_score_probe_and_held_out_sets():
    m, t = paper_config(
        "sine", "expressive", 0.5, num_steps=200, progress=False, device="cpu"
    )
    model = build_model(m, TrainConfig(alpha=0.5, seed=0))
    train(model, SineStream(SineConfig(), 0, 64), t)
    cfg = SineConfig(n_probe=300, n_test=300)
    probe_set, test_set = sine_split(cfg, 0, "probe"), sine_split(cfg, 0, "test")
    scores = evaluate(model, probe_set, test_set)
    assert set(scores) == {"A", "B", "A_bwd", "B_bwd"}
    for s in scores.values():
        assert set(s) == {"adam_probeset", "adam_heldout", "lstsq_heldout"} and all(
            0 <= v < 1.0 for v in s.values()
        )
    # a target of variance 0.5 predicted better than its mean: the probes learned something
    assert scores["A"]["lstsq_heldout"] < 0.1 and scores["B"]["lstsq_heldout"] < 0.1
    classic = build_model(m, TrainConfig(alpha=1.0, seed=0))
    assert "B_bwd" not in evaluate(classic, probe_set, test_set)
    # scores are deterministic
    assert protocol_scores(model, probe_set, test_set, "B") == protocol_scores(
        model, probe_set, test_set, "B"
    )
