"""Data: noisy sine waves, Lorenz trajectories, MNIST left/right halves.

All generators are vectorised (no per-sample Python loop) and seeded through explicit
``torch.Generator`` objects, so the same seed always gives the same data. Data are
generated on the CPU (identical on every device) and moved to the training device.

Streams never overlap: every experiment seed is split with ``numpy.random.SeedSequence``
into independent child seeds for the training stream, the probe set and the test set.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import LorenzConfig, MnistConfig, SineConfig, check_choice, check_int

#: Streams of one experiment seed; each gets its own child of SeedSequence(seed).
STREAMS = ("train", "probe", "test", "model", "extra")


def stream_seed(seed: int, stream: str) -> int:
    """Independent 63-bit seed for ``stream`` (one of STREAMS) of experiment ``seed``."""
    check_int("seed", seed, 0)
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    child = np.random.SeedSequence(seed).spawn(len(STREAMS))[STREAMS.index(stream)]
    return int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def make_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for ``stream`` of experiment ``seed``."""
    return torch.Generator().manual_seed(stream_seed(seed, stream))


# --------------------------------------------------------------------------- sine
def sine_time_grid(cfg: SineConfig) -> torch.Tensor:
    """The time grid linspace(0, t_max, seq_len): [T]."""
    return torch.linspace(0.0, cfg.t_max, cfg.seq_len, dtype=torch.float64)


def sine_sequences(
    n: int,
    generator: torch.Generator,
    cfg: SineConfig = SineConfig(),
    return_params: bool = False,
):
    """``n`` noisy sine waves sin(w t + phi) + eps: [n, T] float32.

    w ~ U(freq_low, freq_high), phi ~ U(0, 2 pi), eps ~ N(0, noise_std^2) on every point.
    With ``return_params`` also returns (w [n], phi [n]).
    """
    check_int("n", n, 1)
    t = sine_time_grid(cfg)
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    freq = cfg.freq_low + (cfg.freq_high - cfg.freq_low) * u[:, :1]
    phase = 2 * math.pi * u[:, 1:]
    noise = cfg.noise_std * torch.randn(
        n, cfg.seq_len, generator=generator, dtype=torch.float64
    )
    seq = (torch.sin(freq * t + phase) + noise).float()
    if return_params:
        return seq, freq[:, 0], phase[:, 0]
    return seq


def split_context_target(
    seq: torch.Tensor, context_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, T, ...] -> context [N, C, ...], target [N, T - C, ...]."""
    return seq[:, :context_len], seq[:, context_len:]


@dataclass
class Split:
    """A fixed set of (context, target) pairs: context [N, C, ...], target [N, T - C, ...]."""

    context: torch.Tensor
    target: torch.Tensor
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.context.shape[0]

    def to(self, device: torch.device | str) -> Split:
        lab = None if self.labels is None else self.labels.to(device)
        return Split(self.context.to(device), self.target.to(device), lab)


class SineStream:
    """A fresh batch of sine waves at every step (Appendix B.2).

    Waves are generated ``chunk_steps`` batches at a time (one vectorised call) and handed
    out one batch per step: every step still sees new, never-repeated sequences, and the
    stream is a pure function of (seed, batch_size, chunk_steps).
    """

    def __init__(
        self,
        cfg: SineConfig,
        seed: int,
        batch_size: int,
        device: torch.device | str = "cpu",
        chunk_steps: int = 50,
    ):
        check_int("batch_size", batch_size, 1)
        check_int("chunk_steps", chunk_steps, 1)
        self.cfg, self.batch_size, self.device, self.chunk_steps = (
            cfg,
            batch_size,
            torch.device(device),
            chunk_steps,
        )
        self.generator = make_generator(seed, "train")
        self._chunk: list[tuple[torch.Tensor, torch.Tensor]] = []

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """context [B, C], target [B, T - C] on the device."""
        if not self._chunk:
            seq = sine_sequences(
                self.batch_size * self.chunk_steps, self.generator, self.cfg
            ).to(self.device, non_blocking=True)
            ctx, tgt = split_context_target(seq, self.cfg.context_len)
            self._chunk = list(
                zip(ctx.split(self.batch_size), tgt.split(self.batch_size))
            )[::-1]
        return self._chunk.pop()


def sine_split(cfg: SineConfig, seed: int, stream: str) -> Split:
    """The probe ("probe", cfg.n_probe waves) or held-out ("test", cfg.n_test) set of ``seed``."""
    if stream not in ("probe", "test"):
        raise ValueError(f"stream must be 'probe' or 'test', got {stream!r}")
    n = cfg.n_probe if stream == "probe" else cfg.n_test
    return Split(
        *split_context_target(
            sine_sequences(n, make_generator(seed, stream), cfg), cfg.context_len
        )
    )


# -------------------------------------------------------------------------- lorenz
def lorenz_step(
    state: torch.Tensor, cfg: LorenzConfig = LorenzConfig()
) -> torch.Tensor:
    """One explicit Euler step of the Lorenz system: state [N, 3] -> [N, 3]."""
    x, y, z = state.unbind(-1)
    deriv = torch.stack(
        (cfg.sigma * (y - x), x * (cfg.rho - z) - y, x * y - cfg.beta * z), dim=-1
    )
    return state + cfg.dt * deriv


def lorenz_derivative(
    state: torch.Tensor, cfg: LorenzConfig = LorenzConfig()
) -> torch.Tensor:
    """The Lorenz vector field (dx/dt, dy/dt, dz/dt) at ``state``: [N, 3] -> [N, 3]."""
    x, y, z = state.unbind(-1)
    return torch.stack(
        (cfg.sigma * (y - x), x * (cfg.rho - z) - y, x * y - cfg.beta * z), dim=-1
    )


def lorenz_step_rk4(
    state: torch.Tensor, cfg: LorenzConfig = LorenzConfig()
) -> torch.Tensor:
    """One classical fourth-order Runge-Kutta step of size cfg.dt: state [N, 3] -> [N, 3].

    Not what the paper integrates (it uses ``lorenz_step``, explicit Euler); its local
    error is O(dt^5) instead of O(dt^2), so at dt = 0.01 it follows the true flow closely.
    """
    h = cfg.dt
    k1 = lorenz_derivative(state, cfg)
    k2 = lorenz_derivative(state + 0.5 * h * k1, cfg)
    k3 = lorenz_derivative(state + 0.5 * h * k2, cfg)
    k4 = lorenz_derivative(state + h * k3, cfg)
    return state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


#: Integrators of ``lorenz_trajectories``: "euler" (the paper's) or "rk4" (accurate).
LORENZ_INTEGRATORS = {"euler": lorenz_step, "rk4": lorenz_step_rk4}


def lorenz_trajectories(
    n: int,
    generator: torch.Generator,
    cfg: LorenzConfig = LorenzConfig(),
    integrator: str = "euler",
) -> torch.Tensor:
    """``n`` raw (unnormalised) trajectories [n, T, 3] float64.

    Starts ~ U(-init_range, init_range)^3; the state is recorded after each step of
    ``integrator`` ("euler", as the paper, or "rk4"), so the start itself is not part of
    the trajectory (as in the paper's code). Both integrators draw the same starts.
    """
    check_int("n", n, 1)
    check_choice("integrator", integrator, tuple(LORENZ_INTEGRATORS))
    step = LORENZ_INTEGRATORS[integrator]
    state = (
        torch.rand(n, 3, generator=generator, dtype=torch.float64) * 2 - 1
    ) * cfg.init_range
    out = torch.empty(n, cfg.seq_len, 3, dtype=torch.float64)
    for t in range(cfg.seq_len):  # loop over time, vectorised over trajectories
        state = step(state, cfg)
        out[:, t] = state
    return out


@dataclass
class LorenzData:
    """Normalised Lorenz sets; ``mean``/``std`` are the training pool's (one scalar each)."""

    train: Split
    probe: Split
    test: Split
    mean: float
    std: float

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def lorenz_data(cfg: LorenzConfig, seed: int, integrator: str = "euler") -> LorenzData:
    """Training pool, probe set and held-out test set for ``seed``.

    Normalisation: one scalar mean and std over all coordinates and steps of the *training
    pool*, reused for the probe and test sets. (The paper's code normalises every set with
    its own statistics; reusing the training statistics keeps the held-out sets honest and
    the three sets on one scale.) ``integrator``: see ``lorenz_trajectories`` (default
    "euler", the paper's; "rk4" gives the same starts integrated accurately).
    """
    raw = {
        s: lorenz_trajectories(n, make_generator(seed, s), cfg, integrator)
        for s, n in (
            ("train", cfg.n_train),
            ("probe", cfg.n_probe),
            ("test", cfg.n_test),
        )
    }
    mean, std = raw["train"].mean().item(), raw["train"].std().item()
    splits = {
        s: Split(*split_context_target(((r - mean) / std).float(), cfg.context_len))
        for s, r in raw.items()
    }
    return LorenzData(splits["train"], splits["probe"], splits["test"], mean, std)


class PoolStream:
    """Batches drawn with replacement from a fixed pool (Lorenz), like the paper's randint."""

    def __init__(
        self,
        pool: Split,
        seed: int,
        batch_size: int,
        device: torch.device | str = "cpu",
    ):
        check_int("batch_size", batch_size, 1)
        self.device = torch.device(device)
        self.pool = pool.to(self.device)
        self.batch_size = batch_size
        self.generator = make_generator(seed, "train")

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(
            0, len(self.pool), (self.batch_size,), generator=self.generator
        ).to(self.device, non_blocking=True)
        return self.pool.context[idx], self.pool.target[idx]


class EpochStream:
    """Shuffled epochs over a fixed set (MNIST); the last batch of an epoch may be smaller."""

    def __init__(
        self,
        data: Split,
        seed: int,
        batch_size: int,
        device: torch.device | str = "cpu",
    ):
        check_int("batch_size", batch_size, 1)
        self.device = torch.device(device)
        self.data = data.to(self.device)
        self.batch_size = batch_size
        self.generator = make_generator(seed, "train")
        self._batches: Iterator[torch.Tensor] = iter(())

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = next(self._batches, None)
        if idx is None:
            perm = torch.randperm(len(self.data), generator=self.generator).to(
                self.device
            )
            self._batches = iter(perm.split(self.batch_size))
            idx = next(self._batches)
        return self.data.context[idx], self.data.target[idx]


# --------------------------------------------------------------------------- mnist
#: Official file names and the md5 sums torchvision checks.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
DATA_DIR_ENV = "BIJEPA_DATA_DIR"
#: Fixed seed of the permutation that splits the offline 10k set into train / eval.
OFFLINE_SPLIT_SEED = 0


class MnistNotFoundError(FileNotFoundError):
    """Neither a download nor an offline folder could provide MNIST."""


class ChecksumError(ValueError):
    """A data file does not have the expected md5 sum."""


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_idx(path: str | Path, expected_md5: str | None = None) -> np.ndarray:
    """Read a (gzipped) IDX file into a uint8 array; checks its md5 when given."""
    path = Path(path)
    if expected_md5 is not None:
        got = md5sum(path)
        if got != expected_md5:
            raise ChecksumError(
                f"{path}: md5 {got} does not match the expected {expected_md5}; the file is corrupted or not the official MNIST file"
            )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # not gzip, truncated stream
        raise ValueError(
            f"{path}: cannot be read as {'a gzipped ' if path.suffix == '.gz' else 'an '}IDX file ({err})"
        ) from None
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(
            f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})"
        )
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(
            f"{path}: expected {int(np.prod(shape))} bytes of data for shape {shape}, found {data.size}"
        )
    return data.reshape(shape)


@dataclass
class MnistData:
    """uint8 images [N, 28, 28] and int64 labels [N] for training and evaluation.

    source: "full" (60k train / 10k test) or "offline-10k" (the official test split cut
    into train / eval with a fixed permutation; see ``load_mnist``).
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    eval_images: torch.Tensor
    eval_labels: torch.Tensor
    source: str

    def describe(self) -> str:
        return f"MNIST source={self.source}: {len(self.train_labels)} train / {len(self.eval_labels)} held-out images"

    def caveat(self) -> str:
        """One paragraph (Markdown) saying what numbers from this source compare with."""
        n_tr, n_ev = len(self.train_labels), len(self.eval_labels)
        if self.source.startswith("full"):
            return (
                f"**Data: full MNIST** ({n_tr:,} training and {n_ev:,} test images), as in the "
                "paper: the numbers below are directly comparable with its Table 2."
            )
        return (
            f"**Data: the offline split** ({self.source}): {n_tr:,} training and {n_ev:,} held-out "
            "images cut from the official 10,000-image test split, because this machine cannot "
            "download the 60,000 training images. With fewer distinct training images (and a "
            "different held-out set) the numbers are *not* directly comparable with the "
            "paper's Table 2; comparisons between models on the same split are."
        )


class MnistFormatError(ValueError):
    """An MNIST file is readable but its content is wrong (shape, count, labels)."""


#: (images, labels) file names of each split, as published and as torchvision stores them.
MNIST_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _find_raw_dir(root: Path) -> Path | None:
    """The first of ``root/mnist/MNIST/raw``, ``root/MNIST/raw``, ``root`` holding any MNIST file."""
    for cand in (root / "mnist" / "MNIST" / "raw", root / "MNIST" / "raw", root):
        if any((cand / name).exists() for name in MNIST_FILES):
            return cand
    return None


def _read_split(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, 28, 28] and int64 labels [N] of one split, md5- and content-checked.

    Errors name the file and the problem: a wrong shape, image and label counts that
    differ, labels outside 0-9.
    """
    img_name, lbl_name = MNIST_SPLITS[split]
    images = read_idx(raw / img_name, MNIST_FILES[img_name])
    labels = read_idx(raw / lbl_name, MNIST_FILES[lbl_name])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MnistFormatError(
            f"{raw / img_name}: images must have shape [N, 28, 28], found {list(images.shape)}"
        )
    if labels.ndim != 1:
        raise MnistFormatError(
            f"{raw / lbl_name}: labels must have shape [N], found {list(labels.shape)}"
        )
    if len(images) != len(labels):
        raise MnistFormatError(
            f"{raw / img_name} holds {len(images)} images but {raw / lbl_name} holds {len(labels)} labels; "
            "the two files of a split must have the same count"
        )
    if len(labels) == 0:
        raise MnistFormatError(f"{raw / lbl_name}: the file holds no labels")
    bad = labels > 9
    if bad.any():
        raise MnistFormatError(
            f"{raw / lbl_name}: labels must lie in 0-9, found {int(bad.sum())} outside "
            f"(first at index {int(np.argmax(bad))}: {int(labels[np.argmax(bad)])})"
        )
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def load_mnist_folder(root: str | Path, cfg: MnistConfig = MnistConfig()) -> MnistData:
    """MNIST from a folder of official gzipped IDX files (md5- and content-checked).

    ``root`` may be the folder holding the files, or one holding ``MNIST/raw/`` (the
    torchvision layout) or ``mnist/MNIST/raw/`` (as in the folder that the setting
    ``BIJEPA_DATA_DIR`` names on the machines that build this book).

    - Train and test files: full MNIST (source "full", 60k train / 10k held out).
    - Only the two test files: the offline split, source "offline-10k": a fixed
      permutation (numpy default_rng(0)) of the test images, the first
      ``N - cfg.offline_eval`` for training and the last ``cfg.offline_eval`` held out.
    - Anything else is an error naming the missing file: train files without the test
      files, or an images file without its labels file (or the reverse).
    """
    raw = _find_raw_dir(Path(root))
    if raw is None:
        raise MnistNotFoundError(
            f"no MNIST files (t10k-images-idx3-ubyte.gz, ...) under {root}"
        )
    present = {
        split: [(raw / n).exists() for n in names]
        for split, names in MNIST_SPLITS.items()
    }
    for split, names in MNIST_SPLITS.items():
        if any(present[split]) and not all(present[split]):
            have, miss = (
                (names[0], names[1]) if present[split][0] else (names[1], names[0])
            )
            raise MnistNotFoundError(
                f"{raw}: {have} is there but {miss} is missing; "
                f"the {split} split needs both its images and its labels file"
            )
    if not all(present["test"]):
        raise MnistNotFoundError(
            f"{raw}: the training files are there but the test files "
            f"{' and '.join(MNIST_SPLITS['test'])} are missing; the book evaluates on "
            "the official test split (with the test files alone it uses the offline 10k split)"
        )
    test_x, test_y = _read_split(raw, "test")
    if all(present["train"]):
        train_x, train_y = _read_split(raw, "train")
        return MnistData(train_x, train_y, test_x, test_y, "full")
    if cfg.offline_eval >= len(test_y):
        raise MnistFormatError(
            f"{raw / MNIST_SPLITS['test'][1]}: {len(test_y)} test images cannot be split into "
            f"training images and offline_eval = {cfg.offline_eval} held-out ones"
        )
    perm = torch.from_numpy(
        np.random.default_rng(OFFLINE_SPLIT_SEED).permutation(len(test_y))
    )
    n_train = len(test_y) - cfg.offline_eval
    tr, ev = perm[:n_train], perm[n_train:]
    return MnistData(test_x[tr], test_y[tr], test_x[ev], test_y[ev], "offline-10k")


def load_mnist(
    cfg: MnistConfig = MnistConfig(),
    data_dir: str | Path | None = None,
    download: bool = True,
    cache_dir: str | Path | None = None,
) -> MnistData:
    """MNIST for the book, from the first source that works.

    1. ``data_dir`` or the environment variable ``BIJEPA_DATA_DIR``: an offline folder
       (see ``load_mnist_folder``); no network is used.
    2. Otherwise full MNIST downloaded by torchvision into ``cache_dir``
       (default ``~/.cache/bijepa_nb``), which works wherever the internet does (Colab).
    Raises MnistNotFoundError naming both options when neither works.
    """
    folder = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if folder:
        return load_mnist_folder(folder, cfg)
    cache = (
        Path(cache_dir)
        if cache_dir is not None
        else Path.home() / ".cache" / "bijepa_nb"
    )
    if download:
        try:
            from torchvision.datasets import MNIST

            tr = MNIST(str(cache), train=True, download=True)
            te = MNIST(str(cache), train=False, download=True)
            return MnistData(
                tr.data, tr.targets.long(), te.data, te.targets.long(), "full"
            )
        except Exception as exc:  # no network, blocked host, ...
            reason = f"download failed ({type(exc).__name__}: {exc})"
    else:
        reason = "download=False"
    raise MnistNotFoundError(
        f"MNIST is not available: {reason}. Either connect to the internet (torchvision downloads "
        f"full MNIST into {cache}), or set the environment variable {DATA_DIR_ENV} to a folder holding the "
        "official IDX files, directly or under MNIST/raw/ or mnist/MNIST/raw/ (the two test "
        "files alone are enough: the offline 10k split)."
    )


def mnist_halves(
    images: torch.Tensor, cfg: MnistConfig = MnistConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, 28, 28] -> normalised left and right halves, each [N, 1, 28, 14] float32."""
    x = ((images.float() / 255.0) - cfg.mean) / cfg.std
    x = x.unsqueeze(1)
    return x[..., : cfg.split_col].contiguous(), x[..., cfg.split_col :].contiguous()


def mnist_split(
    images: torch.Tensor, labels: torch.Tensor, cfg: MnistConfig = MnistConfig()
) -> Split:
    """A Split of normalised halves (left = context, right = target) with labels, held in memory."""
    left, right = mnist_halves(images, cfg)
    return Split(left, right, labels)


def mnist_num_steps(n_train: int, batch_size: int = 256, epochs: int = 10) -> int:
    """Optimiser steps of ``epochs`` passes over ``n_train`` images (last batch kept)."""
    return epochs * math.ceil(n_train / batch_size)


# ------------------------------------------------------------------ probe targets
def first_target_step(target: torch.Tensor) -> torch.Tensor:
    """The 1-step forecast target: [N, T', ...] -> [N, D] (sine: D=1, Lorenz: D=3)."""
    return target[:, 0].reshape(target.shape[0], -1)


def last_context_step(context: torch.Tensor) -> torch.Tensor:
    """The backward-inference target, the last context step: [N, C, ...] -> [N, D]."""
    return context[:, -1].reshape(context.shape[0], -1)


# --- chapter 05
def lorenz_integrator_errors(
    n: int, cfg: LorenzConfig = LorenzConfig(), seed: int = 0
) -> dict[str, np.ndarray]:
    """How far each of ``LORENZ_INTEGRATORS`` strays from the Lorenz flow.

    From ``n`` starts drawn like the data's (uniform in [-init_range, init_range]^3,
    float64, from ``seed``), integrates cfg.seq_len steps of cfg.dt with every integrator
    and with scipy's DOP853 at rtol = atol = 1e-10 (the reference). Returns
    {integrator: [n, seq_len]}: the relative error ||s - s_true|| / ||s_true|| of the
    state after each step.
    """
    from scipy.integrate import solve_ivp

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    gen = torch.Generator().manual_seed(seed)
    starts = (
        torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1
    ) * cfg.init_range
    times = cfg.dt * np.arange(1, cfg.seq_len + 1)

    def field(_, s):
        return lorenz_derivative(torch.from_numpy(s)[None], cfg)[0].numpy()

    true = np.stack(
        [
            solve_ivp(
                field,
                (0, times[-1]),
                s0,
                method="DOP853",
                rtol=1e-10,
                atol=1e-10,
                t_eval=times,
            ).y.T
            for s0 in starts.numpy()
        ]
    )
    out = {}
    for name, step in LORENZ_INTEGRATORS.items():
        state, path = starts.clone(), []
        for _ in range(cfg.seq_len):
            state = step(state, cfg)
            path.append(state)
        path = torch.stack(path, 1).numpy()
        out[name] = np.linalg.norm(path - true, axis=-1) / np.linalg.norm(true, axis=-1)
    return out
