"""The full-MNIST (torchvision layout) path and bad data folders, offline, on tiny IDX files."""

import gzip
import struct

import numpy as np
import pytest
import torch

from bijepa_nb.core.config import MnistConfig
from bijepa_nb.experiments import mnist as D


def write_idx(path, arr: np.ndarray):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(
        ">" + "I" * arr.ndim, *arr.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def make_folder(
    root,
    monkeypatch,
    n_train=60,
    n_test=20,
    splits=("train", "test"),
    files=None,
    overrides=None,
):
    """A torchvision-layout folder root/MNIST/raw/ with tiny IDX files; md5 table patched.

    ``files``: the file names to write (default: both files of every split in ``splits``);
    ``overrides``: {file name: array} replacing a file's content.
    """
    rng = np.random.default_rng(1)
    content = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img, lbl = D.MNIST_SPLITS[split]
        content[img] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        content[lbl] = (np.arange(n) % 10).astype(np.uint8)
    content.update(overrides or {})
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    names = (
        files if files is not None else [n for s in splits for n in D.MNIST_SPLITS[s]]
    )
    sums = dict(D.MNIST_FILES)
    for name in names:
        write_idx(raw / name, content[name])
        sums[name] = D.md5sum(raw / name)
    monkeypatch.setattr(D, "MNIST_FILES", sums)
    return raw, content


def test_full_layout_gives_the_full_split(tmp_path, monkeypatch):
    raw, content = make_folder(tmp_path, monkeypatch)
    m = D.load_mnist_folder(tmp_path)
    assert m.source == "full" and len(m.train_labels) == 60 and len(m.eval_labels) == 20
    np.testing.assert_array_equal(
        m.train_images.numpy(), content["train-images-idx3-ubyte.gz"]
    )
    np.testing.assert_array_equal(
        m.eval_labels.numpy(), content["t10k-labels-idx1-ubyte.gz"]
    )
    assert m.train_labels.dtype == torch.int64
    # through the environment variable, as on a machine with the full download
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path))
    assert D.load_mnist().source == "full"
    # the chapter's data paragraph: no offline caveat for full MNIST
    text = m.caveat()
    assert (
        "full MNIST" in text
        and "offline" not in text
        and "not* directly comparable" not in text
    )
    off = D.MnistData(
        m.train_images, m.train_labels, m.eval_images, m.eval_labels, "offline-10k"
    )
    assert "offline" in off.caveat() and "not* directly comparable" in off.caveat()


def test_full_layout_is_reported_by_the_reproduction(tmp_path, monkeypatch):
    from bijepa_nb.experiments.reproduce import (
        MNIST_QUICK,
        ReproduceSpec,
        reproduce,
        validate,
    )

    make_folder(tmp_path, monkeypatch, n_train=40, n_test=16)
    monkeypatch.setitem(MNIST_QUICK, "num_steps", 2)
    monkeypatch.setitem(MNIST_QUICK, "checkpoints", (0, 1, 5))  # 0 and 5 are left out
    r = reproduce(
        ReproduceSpec("mnist", [0, 1], quick=True, device="cpu"),
        log=lambda s: None,
        mnist=D.load_mnist_folder(tmp_path),
    )
    validate(r)
    assert r["environment"]["mnist_source"] == "full"
    assert r["settings"]["n_train"] == 40 and r["settings"]["num_steps"] == 2
    ck = r["checkpoints"]
    assert ck["steps"] == [0, 1, 2]
    for config in ("classic", "expressive"):
        rows = ck["configs"][config]["probe_acc_heldout"]
        assert len(rows) == 2 and all(len(row) == 3 for row in rows)
        assert [row[0] for row in rows] == r["baselines"]["random_encoder_acc"][
            "per_seed"
        ]  # step 0
        assert [row[-1] for row in rows] == r["configs"][config]["per_seed"][
            "probe_acc_heldout"
        ]


@pytest.mark.parametrize(
    "files, missing",
    [
        (
            ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
            "t10k-images-idx3-ubyte.gz",
        ),  # only train
        (
            ["t10k-images-idx3-ubyte.gz"],
            "t10k-labels-idx1-ubyte.gz",
        ),  # images without labels
        (["t10k-labels-idx1-ubyte.gz"], "t10k-images-idx3-ubyte.gz"),
        (
            [
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                "train-images-idx3-ubyte.gz",
            ],
            "train-labels-idx1-ubyte.gz",
        ),
    ],
)
def test_incomplete_folders_name_the_missing_file(
    tmp_path, monkeypatch, files, missing
):
    make_folder(tmp_path, monkeypatch, files=files)
    with pytest.raises(D.MnistNotFoundError, match=missing):
        D.load_mnist_folder(tmp_path)


def test_only_test_files_is_the_offline_split(tmp_path, monkeypatch):
    make_folder(tmp_path, monkeypatch, splits=("test",), n_test=30)
    m = D.load_mnist_folder(tmp_path, MnistConfig(offline_eval=10))
    assert m.source == "offline-10k" and len(m.train_labels) == 20
    with pytest.raises(D.MnistFormatError, match="offline_eval"):
        D.load_mnist_folder(tmp_path, MnistConfig(offline_eval=30))


@pytest.mark.parametrize(
    "name, array, problem",
    [
        (
            "t10k-labels-idx1-ubyte.gz",
            (np.arange(19) % 10).astype(np.uint8),
            "holds 20 images but .* holds 19 labels",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            np.full(60, 10, np.uint8),
            "labels must lie in 0-9, found 60 outside",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            np.zeros((20, 28, 27), np.uint8),
            r"shape \[N, 28, 28\], found \[20, 28, 27\]",
        ),
        (
            "train-images-idx3-ubyte.gz",
            np.zeros((60, 784), np.uint8),
            r"shape \[N, 28, 28\], found \[60, 784\]",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            np.zeros((20, 1), np.uint8),
            r"labels must have shape \[N\]",
        ),
    ],
)
def test_bad_content_names_the_file_and_the_problem(
    tmp_path, monkeypatch, name, array, problem
):
    raw, _ = make_folder(tmp_path, monkeypatch, overrides={name: array})
    with pytest.raises(D.MnistFormatError, match=problem) as err:
        D.load_mnist_folder(tmp_path)
    assert name in str(err.value)


def test_a_file_that_is_not_gzip_names_the_file(tmp_path, monkeypatch):
    raw, _ = make_folder(tmp_path, monkeypatch)
    path = raw / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(b"not a gzip file at all")
    sums = dict(D.MNIST_FILES)
    sums[path.name] = D.md5sum(path)
    monkeypatch.setattr(D, "MNIST_FILES", sums)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz: cannot be read"):
        D.load_mnist_folder(tmp_path)
