"""A stochastic forward predictor (§5.6): P(s_x, z) -> s_y with a latent z ~ N(0, I).

The paper's predictors are deterministic and the latent z of JEPA (Eq. 2) is unused. Here
z is used: the forward predictor takes [s_x, z] and every z gives one possible future
embedding, so a context maps to a *distribution* of futures. A deterministic predictor
trained with the squared error can only output the conditional mean, which near a
bifurcation (the Lorenz lobe switch) lies between the possible futures.

Training uses a proper scoring rule in embedding space, the energy score (Gneiting &
Raftery 2007) estimated from ``num_samples`` samples per context:

    ES(P, s) = E||X - s|| - 1/2 E||X - X'||,   X, X' ~ P independent

which is minimised in expectation by the true conditional distribution (and reduces to the
absolute error for a point forecast). The backward predictor stays deterministic (MSE).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.config import ModelConfig, TrainConfig, check_int
from ..core.data import stream_seed
from ..core.models import JEPA, build_model, run_sequential
from ..core.probes import lstsq_probe


def energy_score(
    samples: torch.Tensor, truth: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """Energy score per item: samples [M, N, D], truth [N, D] -> [N] (lower is better).

    Uses the unbiased pairwise term (i != j); needs M >= 2. With D = 1 it is the CRPS.
    """
    if samples.dim() != 3 or truth.dim() != 2 or samples.shape[1:] != truth.shape:
        raise ValueError(
            f"samples must be [M, N, D] and truth [N, D], got {tuple(samples.shape)} and {tuple(truth.shape)}"
        )
    m = samples.shape[0]
    if m < 2:
        raise ValueError(f"energy_score needs at least 2 samples, got {m}")
    dist = lambda a: (a.square().sum(-1) + eps).sqrt()
    to_truth = dist(samples - truth).mean(0)  # [N]
    pair = dist(samples.unsqueeze(0) - samples.unsqueeze(1))  # [M, M, N]
    spread = (pair.sum((0, 1)) - m * eps**0.5) / (m * (m - 1))  # drop the i == j terms
    return to_truth - 0.5 * spread


def point_score(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Energy score of a point forecast (the Euclidean error): pred, truth [N, D] -> [N]."""
    return (pred - truth).norm(dim=-1)


class StochasticPredictor(nn.Module):
    """[s, z] [B, embed + noise_dim] -> Linear(pred_hidden) -> [LN] -> ReLU -> Linear(embed)."""

    def __init__(self, cfg: ModelConfig, noise_dim: int = 4):
        super().__init__()
        check_int("noise_dim", noise_dim, 1)
        self.noise_dim = noise_dim
        h = cfg.pred_hidden_dim
        layers: list[nn.Module] = [nn.Linear(cfg.embed_dim + noise_dim, h)]
        layers += [nn.LayerNorm(h)] if cfg.norm != "none" else []
        layers += [nn.ReLU(), nn.Linear(h, cfg.embed_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, s: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """s [B, embed], z [B, noise_dim] (default 0: the 'central' prediction) -> [B, embed]."""
        if z is None:
            z = s.new_zeros(s.shape[0], self.noise_dim)
        return run_sequential(self.net, torch.cat((s, z), dim=-1))

    def sample(
        self,
        s: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``num_samples`` futures per context: s [B, embed] -> [M, B, embed]."""
        check_int("num_samples", num_samples, 1)
        z = torch.randn(
            num_samples,
            s.shape[0],
            self.noise_dim,
            device=s.device,
            dtype=s.dtype,
            generator=generator,
        )
        out = self(
            s.unsqueeze(0).expand(num_samples, -1, -1).reshape(-1, s.shape[-1]),
            z.reshape(-1, self.noise_dim),
        )
        return out.reshape(num_samples, s.shape[0], -1)


class StochasticJEPA(JEPA):
    """BiJEPA whose forward predictor is a ``StochasticPredictor`` trained with the energy score.

    loss = alpha * ES(samples of P_fwd(s_x, z), s_y) + (1 - alpha) * MSE(P_bwd(s_y), s_x).
    The z of training are drawn from the model's own generator (seeded by ``z_seed``), so a
    run is a pure function of its seeds. ``predict_forward`` returns the z = 0 prediction.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        alpha: float = 0.5,
        noise_dim: int = 4,
        num_samples: int = 8,
        z_seed: int = 0,
    ):
        super().__init__(cfg, alpha)
        check_int("num_samples", num_samples, 2)
        self.fwd_predictor = StochasticPredictor(cfg, noise_dim)
        self.num_samples, self.z_seed = num_samples, z_seed
        self._z_gen: torch.Generator | None = None

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._z_gen is None or self._z_gen.device != device:
            self._z_gen = torch.Generator(device=device).manual_seed(self.z_seed)
        return self._z_gen

    def forward_loss(self, emb: dict[str, torch.Tensor]) -> torch.Tensor:
        """The energy score of ``num_samples`` forward predictions (z drawn from the model's generator)
        against the target embedding; ``emb["pred_y"]`` becomes the mean of the samples."""
        samples = self.fwd_predictor.sample(
            emb["online_x"], self.num_samples, self._generator(emb["online_x"].device)
        )  # type: ignore[operator]
        emb["pred_y"] = samples.mean(0)
        return energy_score(samples, emb["target_y"]).mean()

    @torch.no_grad()
    def sample_forward(
        self,
        x: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``num_samples`` predicted target embeddings per context in eval mode: x [N, ...] -> [M, N, embed]."""
        return self._frozen(
            lambda: self.fwd_predictor.sample(
                self.online_encoder(x), num_samples, generator
            )
        )  # type: ignore[operator]


def build_stochastic(
    cfg: ModelConfig,
    train_cfg: TrainConfig,
    device: torch.device | str | None = None,
    noise_dim: int = 4,
    num_samples: int = 8,
) -> StochasticJEPA:
    """A StochasticJEPA whose encoders and backward predictor start exactly as
    ``build_model(cfg, train_cfg)``'s (alpha and seed from ``train_cfg``); its z are drawn
    from the seed's "extra" stream. Fits ``pipeline.train_runs(..., build=...)``."""
    return build_model(
        cfg,
        train_cfg,
        device,
        StochasticJEPA,
        noise_dim=noise_dim,
        num_samples=num_samples,  # type: ignore[return-value]
        z_seed=stream_seed(train_cfg.seed, "extra"),
    )


# ------------------------------------------------- the fair baseline: point + calibrated noise
def residual_covariance(residuals: torch.Tensor, num_features: int = 0) -> torch.Tensor:
    """Covariance of the residuals of a least-squares fit: [n, D] -> [D, D].

    R^T R / (n - num_features - 1): the unbiased estimate when the fit used
    ``num_features`` features and a bias (in-sample residuals are smaller than held-out
    ones by about that factor).
    """
    n = residuals.shape[0]
    check_int("num_features", num_features, 0, n - 2)
    r = residuals.double()
    return (r.T @ r / (n - num_features - 1)).to(residuals.dtype)


def gaussian_samples(
    point: torch.Tensor,
    cov: torch.Tensor,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Samples of N(point, cov): point [N, D], cov [D, D] or [N, D, D] -> [M, N, D].

    The "point forecast plus calibrated noise" forecaster: a deterministic forecast made
    probabilistic with the spread of its own residuals, which the energy score of a
    stochastic predictor must beat to show that its samples know more than a noise level.
    """
    check_int("num_samples", num_samples, 2)
    d = point.shape[-1]
    jitter = 1e-12 * torch.eye(d, dtype=torch.float64, device=cov.device)
    chol = torch.linalg.cholesky(cov.double() + jitter).to(
        point.dtype
    )  # [D, D] or [N, D, D]
    z = torch.randn(
        num_samples,
        *point.shape,
        generator=generator,
        device=point.device,
        dtype=point.dtype,
    )
    return (
        point + (chol @ z.unsqueeze(-1)).squeeze(-1)
        if chol.dim() == 3
        else point + z @ chol.T
    )


# ------------------------------------------- scoring forecasts of the far Lorenz state
#: The forecasters of the last target state compared in chapter 9, Section 4.
FORECASTERS = (
    "deterministic, point",
    "deterministic + calibrated noise",
    "deterministic + noise calibrated by region",
    "stochastic, samples",
    "stochastic, mean of samples (point)",
)


def near_switch(data, split, frac: float = 0.2) -> torch.Tensor:
    """Mask [N] of the ``frac`` of sequences with the smallest |x| (raw units) at the last
    context step: those closest to the Lorenz lobe switch. data: a ``LorenzData``."""
    x = data.denormalise(split.context[:, -1, 0]).abs()
    return x <= torch.quantile(x, frac)


def sample_scores(
    samples: torch.Tensor, truth: torch.Tensor, near: torch.Tensor
) -> dict[str, float]:
    """Mean energy score over all and over ``near`` items, mean CRPS of the first
    coordinate near, and mean sample spread near and far. samples [M, N, D], truth
    [N, D], near [N] bool. A point forecast is samples [1, N, D] (ES = Euclidean
    error, CRPS = |error|, no spread)."""
    if samples.shape[0] == 1:
        es = point_score(samples[0], truth)
        crps = (samples[0, :, 0] - truth[:, 0]).abs()
        spread = torch.zeros_like(es)
    else:
        es = energy_score(samples, truth)
        crps = energy_score(samples[..., :1], truth[:, :1])  # the 1-D ES is the CRPS
        spread = samples.std(0).norm(dim=-1)
    return {
        "all": float(es.mean()),
        "near": float(es[near].mean()),
        "crps_near": float(crps[near].mean()),
        "spread_near": float(spread[near].mean()),
        "spread_far": float(spread[~near].mean()),
    }


def horizon_forecasts(
    deterministic: JEPA, stochastic: StochasticJEPA, data, num_samples: int, seed: int
) -> tuple[dict[str, dict[str, float]], dict[str, torch.Tensor]]:
    """Score every forecaster of ``FORECASTERS`` on the last target state of ``data.test``.

    data: a ``LorenzData`` (e.g. ``beyond.lorenz_horizon_data``). The deterministic
    model's point forecast is a least-squares probe on P_fwd(f(x)) fitted on the probe
    set; the calibrated baselines add Gaussian noise with the covariance of that probe's
    residuals (over all probe sequences, or near / far from the switch separately, which
    the context tells). The stochastic model's samples are decoded by least squares from
    the target embedding f(y). Random draws come from ``seed``'s "extra" stream.
    Returns (forecaster -> ``sample_scores``) and the example tensors of the figure.
    """
    dev = next(deterministic.parameters()).device
    p, t = data.probe.to(dev), data.test.to(dev)
    near, near_p = near_switch(data, data.test).to(dev), near_switch(data, data.probe)
    near_p = near_p.to(dev)
    truth, truth_p = t.target[:, -1], p.target[:, -1]  # [N, 3]
    gen = torch.Generator(device=dev).manual_seed(stream_seed(seed, "extra"))
    probe = lstsq_probe(deterministic.predict_forward(p.context), truth_p)
    point = probe(deterministic.predict_forward(t.context))
    resid = probe(deterministic.predict_forward(p.context)) - truth_p  # [n, 3]
    n_fit, k_fit = resid.shape[0], deterministic.cfg.embed_dim
    inflate = (n_fit - 1) / (n_fit - k_fit - 1)  # in-sample residuals are too small
    cov = residual_covariance(resid, k_fit)
    by_region = torch.where(
        near[:, None, None],
        residual_covariance(resid[near_p]) * inflate,
        residual_covariance(resid[~near_p]) * inflate,
    )  # [N, 3, 3]
    decoder = lstsq_probe(stochastic.encode(p.target), truth_p)
    samples = decoder(stochastic.sample_forward(t.context, num_samples, gen))
    out = {
        FORECASTERS[0]: sample_scores(point[None], truth, near),
        FORECASTERS[1]: sample_scores(
            gaussian_samples(point, cov, num_samples, gen), truth, near
        ),
        FORECASTERS[2]: sample_scores(
            gaussian_samples(point, by_region, num_samples, gen), truth, near
        ),
        FORECASTERS[3]: sample_scores(samples, truth, near),
        FORECASTERS[4]: sample_scores(samples.mean(0)[None], truth, near),
    }
    example = {"near": near, "truth": truth, "point": point, "samples": samples}
    return out, example
