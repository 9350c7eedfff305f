"""MNIST: the IDX reader on the real files and on malformed ones, checksums, the DataModule."""

from __future__ import annotations

import gzip
import shutil

import pytest
import torch

from structebm.data._files import ChecksumError, DataFileMissingError, data_root
from structebm.data.loaders import EpochShuffleSampler
from structebm.data.mnist import (
    IDXFormatError,
    MNIST_FILES,
    MNISTDataModule,
    load_mnist,
    read_idx,
    scale_images,
)

# Reference figures from the dataset card (datasets/mnist.md), computed independently when the files were collected.
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def train_set() -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist("train", data_root())


def test_real_files_counts_labels_and_pixels(train_set):
    images, labels = train_set
    assert images.shape == (60_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (60_000,) and labels.dtype == torch.long
    assert torch.bincount(labels, minlength=10).tolist() == TRAIN_LABEL_COUNTS
    assert sum(TRAIN_LABEL_COUNTS) == 60_000
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    pixels = images.double() / 255
    assert pixels.mean().item() == pytest.approx(0.1307, abs=5e-5)
    assert pixels.std().item() == pytest.approx(0.3081, abs=5e-5)
    test_images, test_labels = load_mnist("test", data_root())
    assert test_images.shape == (10_000, 28, 28)
    assert torch.bincount(test_labels, minlength=10).tolist() == TEST_LABEL_COUNTS
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_checksum_mismatch_and_missing_file_are_named(tmp_path, monkeypatch):
    remote = MNIST_FILES["test"][1]
    target = tmp_path / remote.relative_path
    target.parent.mkdir(parents=True)
    shutil.copy(data_root() / MNIST_FILES["test"][0].relative_path, tmp_path / MNIST_FILES["test"][0].relative_path)
    raw = bytearray(gzip.decompress((data_root() / remote.relative_path).read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # one label changed: still a valid IDX file, but not MNIST
    target.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        load_mnist("test", tmp_path)
    target.unlink()
    monkeypatch.setenv("STRUCTEBM_OFFLINE", "1")
    with pytest.raises(DataFileMissingError, match="mnist/t10k-labels-idx1-ubyte.gz"):
        load_mnist("test", tmp_path)


def _idx(type_code: int, sizes: list[int], payload_length: int) -> bytes:
    header = bytes([0, 0, type_code, len(sizes)]) + b"".join(s.to_bytes(4, "big") for s in sizes)
    return header + bytes(i % 256 for i in range(payload_length))


def test_idx_reader_round_trip_plain_and_gzip(tmp_path):
    content = _idx(0x08, [3, 2, 5], 30)
    plain, zipped = tmp_path / "a-idx3-ubyte", tmp_path / "a-idx3-ubyte.gz"
    plain.write_bytes(content)
    zipped.write_bytes(gzip.compress(content))
    for path in (plain, zipped):
        array = read_idx(path, expected_dims=3)
        assert array.shape == (3, 2, 5) and array.dtype == torch.uint8
        assert array.flatten().tolist() == list(range(30))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x01\x02\x08\x01" + (4).to_bytes(4, "big") + bytes(4), "bad magic number"),
        (b"", "bad magic number"),
        (_idx(0x0D, [4], 16), "type code 0x0d"),
        (_idx(0x08, [2, 2], 4), "declares 2 dimensions, expected 3"),
        (_idx(0x08, [2, 28, 28], 2 * 784 - 1), "size mismatch"),
        (_idx(0x08, [2, 28, 28], 2 * 784 + 5), "size mismatch"),
        (bytes([0, 0, 8, 3]) + bytes(6), "truncated header"),
    ],
)
def test_malformed_idx_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(IDXFormatError, match=message) as caught:
        read_idx(path, expected_dims=3)
    assert str(path) in str(caught.value)


def test_corrupt_gzip_stream_is_an_idx_error(tmp_path):
    path = tmp_path / "broken-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx(0x08, [100], 100))[:-12])
    with pytest.raises(IDXFormatError, match="cannot be read"):
        read_idx(path)


def test_scaling_maps_bytes_to_the_unit_box():
    pixels = torch.tensor([[[0, 255], [51, 204]]], dtype=torch.uint8)
    scaled = scale_images(pixels)
    assert scaled.shape == (1, 1, 2, 2) and scaled.dtype == torch.float32
    assert torch.allclose(scaled.flatten(), torch.tensor([-1.0, 1.0, -0.6, 0.6]))
    with pytest.raises(TypeError, match="uint8"):
        scale_images(pixels.float())


def test_datamodule_split_roles_and_reproducibility(train_set, monkeypatch):
    monkeypatch.setenv("STRUCTEBM_DATA", str(data_root()))
    module = MNISTDataModule(batch_size=32, num_val=5_000, seed=3)
    module.setup("fit")
    assert len(module.train_set) == 55_000 and len(module.val_set) == 5_000
    # Train and validation images are disjoint rows of the training file: recover the rows via their bytes.
    images, labels = train_set
    keys = {bytes(row.numpy()) for row in images.flatten(1)}
    assert len(keys) == 60_000  # MNIST train images are pairwise distinct, so bytes identify rows
    train_keys = {bytes(row.numpy()) for row in module.train_set.images.flatten(1)}
    val_keys = {bytes(row.numpy()) for row in module.val_set.images.flatten(1)}
    assert not train_keys & val_keys and len(train_keys | val_keys) == 60_000
    assert torch.bincount(torch.cat([module.train_set.labels, module.val_set.labels]), minlength=10).tolist() == TRAIN_LABEL_COUNTS

    x, y = next(iter(module.train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (32,) and y.dtype == torch.long
    assert x.min() == -1 and x.max() == 1
    rows = list(EpochShuffleSampler(55_000, seed=3))[:32]
    assert torch.equal(x, scale_images(module.train_set.images[rows])) and torch.equal(y, module.train_set.labels[rows])

    again = MNISTDataModule(batch_size=32, num_val=5_000, seed=3, state="label", num_train=1_000)
    again.setup("fit")
    assert torch.equal(again.val_set.images, module.val_set.images)  # same seed, same split
    assert torch.equal(again.train_set.images, module.train_set.images[:1_000])
    y_first, x_first = next(iter(again.train_dataloader()))  # state "label": batches are (y, x)
    rows = list(EpochShuffleSampler(1_000, seed=3))[:32]
    assert torch.equal(y_first, again.train_set.labels[rows]) and torch.equal(x_first, scale_images(again.train_set.images[rows]))
    other = MNISTDataModule(num_val=5_000, seed=4)
    other.setup("fit")
    assert not torch.equal(other.val_set.labels, module.val_set.labels)

    module.setup("test")
    x_test, y_test = next(iter(module.test_dataloader()))
    assert x_test.shape == (1_000, 1, 28, 28) and y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"state": "pixels"}, "state must be"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_val": 60_000}, "num_val"),
        ({"num_train": 56_000}, "num_train"),
    ],
)
def test_datamodule_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MNISTDataModule(**kwargs)


def test_loaders_before_setup_say_so():
    with pytest.raises(RuntimeError, match="setup"):
        MNISTDataModule().train_dataloader()


def test_datamodule_shifts_only_training_batches(monkeypatch):
    from types import SimpleNamespace

    from structebm.data.augment import random_shift, step_generator

    monkeypatch.setenv("STRUCTEBM_DATA", str(data_root()))
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    y = torch.arange(4)
    for state, batch in (("image", (x, y)), ("label", (y, x))):
        module = MNISTDataModule(state=state, seed=2, max_shift=2)
        module.trainer = SimpleNamespace(training=True, global_step=7)
        out = module.on_after_batch_transfer(batch, 0)
        shifted, labels = (out[0], out[1]) if state == "image" else (out[1], out[0])
        assert torch.equal(labels, y)
        assert torch.equal(shifted, random_shift(x, 2, step_generator(2, 7), fill=-1.0)) and not torch.equal(shifted, x)
        module.trainer = SimpleNamespace(training=False, global_step=7)
        assert module.on_after_batch_transfer(batch, 0) is batch
    with pytest.raises(ValueError, match="max_shift"):
        MNISTDataModule(max_shift=14)
