import dataclasses
import math

import pytest

from bijepa_nb.core.config import (
    LorenzConfig,
    MnistConfig,
    ModelConfig,
    SineConfig,
    TrainConfig,
    resolve_device,
)
from bijepa_nb.experiments.registry import paper_config

BAD_TRAIN = [
    ("alpha", -0.1, r"alpha must be in \[0, 1\]"),
    ("alpha", 1.5, r"alpha must be in \[0, 1\]"),
    ("alpha", math.nan, "alpha must be finite"),
    ("ema_momentum", 1.01, r"ema_momentum must be in \[0, 1\]"),
    ("ema_momentum", -0.5, r"ema_momentum must be in \[0, 1\]"),
    ("num_steps", 0, r"num_steps must be an integer in \[1, inf\)"),
    ("batch_size", -3, "batch_size"),
    ("lr", 0.0, r"lr must be in \(0, inf\)"),
    ("lr", -1e-3, "lr"),
    ("weight_decay", -1e-4, r"weight_decay must be in \[0, inf\)"),
    ("device", "tpu", "device must be one of"),
    ("log_every", 0, "log_every"),
    ("num_threads", 0, "num_threads"),
    ("seed", -1, "seed"),
]


@pytest.mark.parametrize("field,value,msg", BAD_TRAIN)
def test_train_config_rejects(field, value, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_steps", 2.5),
        ("num_steps", "100"),
        ("alpha", "0.5"),
        ("num_steps", True),
        ("progress", 1),
    ],
)
def test_train_config_rejects_types(field, value):
    with pytest.raises(TypeError, match=field):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(norm="batchnorm"), "norm must be one of 'none', 'layernorm', 'sphere'"),
        (dict(arch="rnn"), "arch must be one of"),
        (dict(embed_dim=0), "embed_dim"),
        (dict(hidden_dim=-1), "hidden_dim"),
        (dict(input_dim=0), "input_dim"),
        (dict(pred_hidden_dim=0), "pred_hidden_dim"),
    ],
)
def test_model_config_rejects(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "cls,kwargs,msg",
    [
        (
            SineConfig,
            dict(context_len=20),
            r"context_len must be an integer in \[1, 19\]",
        ),
        (SineConfig, dict(context_len=0), "context_len"),
        (SineConfig, dict(freq_high=0.5), "freq_high"),
        (SineConfig, dict(noise_std=-0.1), "noise_std"),
        (SineConfig, dict(n_probe=0), "n_probe"),
        (
            LorenzConfig,
            dict(context_len=40),
            r"context_len must be an integer in \[1, 39\]",
        ),
        (LorenzConfig, dict(dt=0.0), "dt"),
        (LorenzConfig, dict(sigma=-1.0), "sigma"),
        (LorenzConfig, dict(n_train=1), "n_train"),
        (MnistConfig, dict(split_col=10), "split_col"),
        (MnistConfig, dict(std=0.0), "std"),
        (MnistConfig, dict(offline_eval=10000), "offline_eval"),
    ],
)
def test_data_configs_reject(cls, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        cls(**kwargs)


def test_configs_are_frozen():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.alpha = 0.3  # type: ignore[misc]


def test_paper_config_matches_appendix_b():
    m, t = paper_config("sine", "expressive")
    assert (m.input_dim, m.hidden_dim, m.embed_dim, m.pred_hidden_dim, m.norm) == (
        10,
        64,
        16,
        64,
        "layernorm",
    )
    assert (
        t.num_steps,
        t.batch_size,
        t.lr,
        t.weight_decay,
        t.ema_momentum,
        t.alpha,
    ) == (2000, 64, 1e-3, 1e-4, 0.995, 0.5)
    m, t = paper_config("lorenz", "expressive", alpha=1.0)
    assert (m.input_dim, m.hidden_dim, m.embed_dim) == (60, 128, 32) and (
        t.num_steps,
        t.lr,
        t.alpha,
    ) == (3000, 5e-4, 1.0)
    m, t = paper_config("sine", "unconstrained")
    assert m.norm == "none" and t.weight_decay == 0.0
    m, t = paper_config("sine", "restrictive")
    assert m.norm == "sphere" and t.weight_decay == 1e-4
    m, t = paper_config("mnist")
    assert (
        m.arch == "conv"
        and m.embed_dim == 64
        and t.batch_size == 256
        and t.ema_momentum == 0.99
    )
    with pytest.raises(ValueError, match="mode must be one of"):
        paper_config("sine", "explosive")
    with pytest.raises(ValueError, match="experiment must be one of"):
        paper_config("cifar")


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu0")
