"""MNIST: the official files (download, or an offline folder), left/right halves, the
classification probe and the generative decoder (Experiment 3, §4.4)."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import (
    MnistConfig,
    check_int,
)
from ..core.data import Split, make_generator
from ..core.models import JEPA, eval_mode, seeded

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

    def key(self) -> dict[str, Any]:
        """What identifies this data set (the chunk caches' key, and what a worker checks
        its own copy against): its source, sizes and a hash of its bytes."""
        h = hashlib.sha256(self.source.encode())
        for t in (
            self.train_images,
            self.train_labels,
            self.eval_images,
            self.eval_labels,
        ):
            h.update(t.contiguous().cpu().numpy().tobytes())
        return {
            "source": self.source,
            "n_train": len(self.train_labels),
            "n_eval": len(self.eval_labels),
            "sha256": h.hexdigest()[:32],
        }

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


# ------------------------------------------------------------------------- MNIST
@torch.no_grad()
def batched_encode(
    model: JEPA, images: torch.Tensor, batch_size: int = 2048
) -> torch.Tensor:
    """Frozen online-encoder features of many half images [N, 1, 28, 14] -> [N, embed]."""
    device = next(model.parameters()).device
    return torch.cat(
        [model.encode(chunk.to(device)) for chunk in images.split(batch_size)]
    )


def fit_minibatch(
    params: Iterable[nn.Parameter],
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    epochs: int,
    batch_size: int,
    lr: float,
    gen: torch.Generator,
    device: torch.device | str,
    min_batch: int = 1,
    after_epoch: Callable[[int], None] | None = None,
) -> None:
    """The mini-batch Adam loop of every MNIST read-out (probe, decoder, supervised).

    Each epoch draws a permutation of ``n`` indices from ``gen`` and splits it into
    batches of ``batch_size``: ``batch_loss(idx)`` (idx [b] on ``device``) -> scalar loss
    -> backward -> Adam step. Batches smaller than ``min_batch`` are skipped (BatchNorm
    needs two samples); ``after_epoch(epoch)`` (1-based) runs after each epoch.

    Why so many parameters: the loop every MNIST read-out shares; each is a setting of
    that loop (data, loss, epochs, batch, learning rate, seed, device).
    """
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    opt = torch.optim.Adam(params, lr=lr)
    with torch.enable_grad():
        for epoch in range(1, epochs + 1):
            for idx in torch.randperm(n, generator=gen).to(device).split(batch_size):
                if len(idx) < min_batch:
                    continue
                loss = batch_loss(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if after_epoch is not None:
                after_epoch(epoch)


def classification_probe(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    eval_feats: torch.Tensor,
    eval_labels: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 0.01,
    seed: int = 0,
    record: Sequence[int] = (),
) -> dict[str, Any]:
    """Linear classifier on frozen features (Adam, mini-batches, as the paper's code).

    Returns train accuracy and held-out accuracy (fractions in [0, 1]). ``record``: epochs
    after which both are also measured, returned as ``curve`` {epoch: (train, held-out)};
    the value at epoch e equals that of a run with ``epochs=e`` (same random stream).

    Why so many parameters: train and evaluation features and labels plus the paper's
    probe settings, each with the paper's default.
    """
    check_int("epochs", epochs, 1)
    n_cls = int(max(train_labels.max(), eval_labels.max())) + 1
    gen = make_generator(seed, "extra")
    with seeded(seed):
        lin = nn.Linear(train_feats.shape[1], n_cls).to(train_feats.device)
    acc = lambda f, y: float((lin(f).argmax(1) == y).float().mean())
    curve: dict[int, tuple[float, float]] = {}

    def measure(epoch: int) -> None:
        if epoch in record:
            with torch.no_grad():
                curve[epoch] = (
                    acc(train_feats, train_labels),
                    acc(eval_feats, eval_labels),
                )

    fit_minibatch(
        lin.parameters(),
        lambda idx: F.cross_entropy(lin(train_feats[idx]), train_labels[idx]),
        len(train_labels),
        epochs,
        batch_size,
        lr,
        gen,
        train_feats.device,
        after_epoch=measure,
    )
    with torch.no_grad():
        out: dict[str, Any] = {
            "train_acc": acc(train_feats, train_labels),
            "eval_acc": acc(eval_feats, eval_labels),
        }
    if record:
        out["curve"] = curve
    return out


class GenerativeDecoder(nn.Module):
    """Embedding [B, D] -> right half in [0, 1] pixel units [B, 1, 28, 14] (the paper's decoder)."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embed_dim, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Linear(256, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, 28 * 14),
            nn.Sigmoid(),
        )

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s).view(-1, 1, 28, 14)


def decoder_probe(
    train_feats: torch.Tensor,
    train_right: torch.Tensor,
    eval_feats: torch.Tensor,
    eval_right: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    record: Sequence[int] = (),
) -> tuple[GenerativeDecoder, dict[str, Any]]:
    """Train the generative decoder on frozen left-half features to output the right half.

    *_right: right halves in [0, 1] pixel units [N, 1, 28, 14]. Returns the decoder (eval
    mode) and train / held-out pixel MSE; ``record`` as in ``classification_probe``
    (``curve`` {epoch: (train MSE, held-out MSE)}).

    Why so many parameters: train and evaluation features and targets plus the paper's
    decoder settings, each with the paper's default.
    """
    check_int("epochs", epochs, 1)
    gen = make_generator(seed, "extra")
    with seeded(seed):
        dec = GenerativeDecoder(train_feats.shape[1]).to(train_feats.device)
    mse = lambda f, y: float(F.mse_loss(dec(f), y))
    curve: dict[int, tuple[float, float]] = {}

    def measure(epoch: int) -> None:
        if epoch in record:
            with eval_mode(dec), torch.no_grad():
                curve[epoch] = (
                    mse(train_feats, train_right),
                    mse(eval_feats, eval_right),
                )

    dec.train()
    fit_minibatch(
        dec.parameters(),
        lambda idx: F.mse_loss(dec(train_feats[idx]), train_right[idx]),
        len(train_feats),
        epochs,
        batch_size,
        lr,
        gen,
        train_feats.device,
        min_batch=2,  # BatchNorm1d needs two samples
        after_epoch=measure,
    )
    dec.eval()
    with torch.no_grad():
        out: dict[str, Any] = {
            "train_mse": mse(train_feats, train_right),
            "eval_mse": mse(eval_feats, eval_right),
        }
    if record:
        out["curve"] = curve
    return dec, out


def right_half_pixels(images: torch.Tensor, split_col: int = 14) -> torch.Tensor:
    """uint8 [N, 28, 28] -> right halves in [0, 1]: [N, 1, 28, 14]."""
    return (images.float() / 255.0).unsqueeze(1)[..., split_col:].contiguous()
