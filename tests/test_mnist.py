import gzip
import struct

import numpy as np
import pytest
import torch

from bijepa_nb.core import data
from bijepa_nb.core.config import MnistConfig
from bijepa_nb.experiments import mnist as D


def write_idx(path, arr: np.ndarray):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(
        ">" + "I" * arr.ndim, *arr.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A folder with tiny t10k files; the md5 table is patched to their sums."""
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    labels = (np.arange(50) % 10).astype(np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", imgs)
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", labels)
    sums = dict(D.MNIST_FILES)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        sums[name] = D.md5sum(raw / name)
    monkeypatch.setattr(D, "MNIST_FILES", sums)
    return tmp_path, imgs, labels


def test_idx_reader_on_a_file_the_test_writes(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    write_idx(tmp_path / "x.gz", arr)
    np.testing.assert_array_equal(D.read_idx(tmp_path / "x.gz"), arr)


def test_tiny_offline_folder_split(tiny_mnist):
    root, imgs, labels = tiny_mnist
    m = D.load_mnist_folder(root, MnistConfig(offline_eval=10))
    assert (
        m.source == "offline-10k"
        and len(m.train_labels) == 40
        and len(m.eval_labels) == 10
    )
    perm = np.random.default_rng(D.OFFLINE_SPLIT_SEED).permutation(50)
    np.testing.assert_array_equal(m.eval_images.numpy(), imgs[perm[40:]])
    np.testing.assert_array_equal(m.train_labels.numpy(), labels[perm[:40]])


def test_data_dir_setting_is_used(tiny_mnist, monkeypatch):
    root, _, _ = tiny_mnist
    monkeypatch.setenv(D.DATA_DIR_ENV, str(root))
    m = D.load_mnist(MnistConfig(offline_eval=10))
    assert m.source == "offline-10k" and len(m.eval_labels) == 10


def test_corrupted_file_gives_checksum_error(tiny_mnist):
    root, _, _ = tiny_mnist
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(D.ChecksumError, match="md5"):
        D.load_mnist_folder(root, MnistConfig(offline_eval=10))


def test_missing_everywhere_names_both_options(tmp_path, monkeypatch):
    monkeypatch.delenv(D.DATA_DIR_ENV, raising=False)
    with pytest.raises(D.MnistNotFoundError, match="BIJEPA_DATA_DIR") as err:
        D.load_mnist(download=False, cache_dir=tmp_path)
    assert "internet" in str(err.value)
    with pytest.raises(D.MnistNotFoundError, match="no MNIST files"):
        D.load_mnist(data_dir=tmp_path)


def test_halves_are_normalised_and_split_at_column_14():
    img = torch.zeros(2, 28, 28, dtype=torch.uint8)
    img[:, :, 14:] = 255
    left, right = D.mnist_halves(img)
    assert left.shape == right.shape == (2, 1, 28, 14)
    torch.testing.assert_close(left, torch.full_like(left, -0.1307 / 0.3081))
    torch.testing.assert_close(right, torch.full_like(right, (1 - 0.1307) / 0.3081))


def test_real_offline_mnist(shared_data_dir, monkeypatch):
    """The official 10k split from the shared folder, md5-checked."""
    monkeypatch.setenv(D.DATA_DIR_ENV, str(shared_data_dir))
    m = D.load_mnist()
    assert (
        m.source == "offline-10k"
        and len(m.train_labels) == 8000
        and len(m.eval_labels) == 2000
    )
    assert (
        m.train_images.shape == (8000, 28, 28) and m.train_images.dtype == torch.uint8
    )
    assert set(m.eval_labels.tolist()) == set(range(10))
    assert D.mnist_num_steps(8000) == 10 * 32


def test_mnist_pipeline_on_tiny_data(tiny_mnist):
    from bijepa_nb.core.models import build_model
    from bijepa_nb.core.training import train
    from bijepa_nb.experiments.mnist import (
        batched_encode,
        classification_probe,
        decoder_probe,
        right_half_pixels,
    )
    from bijepa_nb.experiments.registry import paper_config

    root, _, _ = tiny_mnist
    m = D.load_mnist_folder(root, MnistConfig(offline_eval=10))
    train_split = D.mnist_split(m.train_images, m.train_labels)
    stream = data.EpochStream(train_split, 0, 16)
    mc, tc = paper_config(
        "mnist",
        "expressive",
        0.5,
        num_steps=2 * stream.steps_per_epoch,
        batch_size=16,
        progress=False,
        device="cpu",
    )
    model = build_model(mc, tc)
    hist = train(model, stream, tc)
    assert len(hist) == 6 and np.all(np.isfinite(hist.total))
    ev = D.mnist_split(m.eval_images, m.eval_labels)
    f_tr, f_ev = (
        batched_encode(model, train_split.context),
        batched_encode(model, ev.context),
    )
    assert f_tr.shape == (40, 64)
    acc = classification_probe(f_tr, m.train_labels, f_ev, m.eval_labels, epochs=2)
    assert 0.0 <= acc["eval_acc"] <= 1.0 and 0.0 <= acc["train_acc"] <= 1.0
    dec, mse = decoder_probe(
        f_tr,
        right_half_pixels(m.train_images),
        f_ev,
        right_half_pixels(m.eval_images),
        epochs=2,
        batch_size=16,
    )
    assert dec(f_ev).shape == (10, 1, 28, 14) and 0.0 < mse["eval_mse"] < 1.0
