"""MNIST: an IDX reader, the four checked files, and a DataModule of image–label pairs.

Files live at ``$STRUCTEBM_DATA/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
(see ``datasets/mnist.md``); each is checked against the SHA-256 of its decompressed content
and downloaded from the torchvision mirror of the original distribution where it is missing.

An IDX file (LeCun et al.) is a big-endian header — two zero bytes, a type code (``0x08`` =
unsigned byte), the number of dimensions ``d`` — then ``d`` 32-bit sizes, then the data in
row-major order. A wrong magic number or a payload whose length does not match the sizes
raises :class:`IDXFormatError` naming the file.

Images are scaled to ``[-1, 1]``:

.. math::
    x = \\frac{2 u}{255} - 1, \\qquad u \\in \\{0, \\dots, 255\\}.

Batches follow the objective contract ``(state, condition)``: with ``state="image"`` they are
``(x [B, 1, 28, 28] float, y [B] long)`` — contrastive divergence over images given labels
(:class:`~structebm.energies.image_label.ImageGivenLabel`, per-class replay buffer); with
``state="label"`` they are ``(y, x)`` — exact NLL over labels given images
(:class:`~structebm.energies.image_label.LabelGivenImage`), i.e. classification.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal, Optional, Union

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from structebm.data._files import RemoteFile, fetch_file
from structebm.data.augment import random_shift, step_generator
from structebm.data.loaders import EpochShuffleSampler

__all__ = [
    "IDXFormatError",
    "MNIST_FILES",
    "MNIST_SPLIT_SIZES",
    "read_idx",
    "load_mnist",
    "scale_images",
    "check_split_sizes",
    "train_split",
    "MNISTPairs",
    "MNISTDataModule",
]

Split = Literal["train", "test"]
State = Literal["image", "label"]

_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES: dict[str, tuple[RemoteFile, RemoteFile]] = {
    "train": (
        RemoteFile("mnist/train-images-idx3-ubyte.gz",
                   "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                   _MIRROR + "train-images-idx3-ubyte.gz"),
        RemoteFile("mnist/train-labels-idx1-ubyte.gz",
                   "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                   _MIRROR + "train-labels-idx1-ubyte.gz"),
    ),
    "test": (
        RemoteFile("mnist/t10k-images-idx3-ubyte.gz",
                   "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                   _MIRROR + "t10k-images-idx3-ubyte.gz"),
        RemoteFile("mnist/t10k-labels-idx1-ubyte.gz",
                   "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                   _MIRROR + "t10k-labels-idx1-ubyte.gz"),
    ),
}
MNIST_SPLIT_SIZES: dict[str, int] = {"train": 60_000, "test": 10_000}
_UNSIGNED_BYTE = 0x08


class IDXFormatError(ValueError):
    """An IDX file is malformed (bad magic number, unsupported type, size mismatch)."""


def read_idx(path: Union[str, Path], expected_dims: Optional[int] = None) -> Tensor:
    """Read an unsigned-byte IDX file (optionally gzipped) into a ``uint8`` tensor of its sizes.

    Args:
        path: the file; a ``.gz`` suffix means gzip-compressed.
        expected_dims: if given, the number of dimensions the header must declare.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as error:
        raise IDXFormatError(f"IDX file {path}: cannot be read ({error})") from None
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise IDXFormatError(f"IDX file {path}: bad magic number {content[:4].hex() or '(empty file)'}; expected 0000XXYY")
    if content[2] != _UNSIGNED_BYTE:
        raise IDXFormatError(f"IDX file {path}: type code 0x{content[2]:02x} is not supported (only 0x08, unsigned byte)")
    num_dims = content[3]
    if num_dims == 0 or (expected_dims is not None and num_dims != expected_dims):
        wanted = "at least 1" if expected_dims is None else str(expected_dims)
        raise IDXFormatError(f"IDX file {path}: header declares {num_dims} dimensions, expected {wanted}")
    header_length = 4 + 4 * num_dims
    if len(content) < header_length:
        raise IDXFormatError(f"IDX file {path}: truncated header ({len(content)} bytes, need {header_length})")
    sizes = [int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(num_dims)]
    expected_bytes = header_length + int(torch.tensor(sizes).prod())
    if len(content) != expected_bytes:
        raise IDXFormatError(
            f"IDX file {path}: size mismatch, the header declares sizes {sizes} ({expected_bytes} bytes with the header) "
            f"but the file holds {len(content)} bytes"
        )
    return torch.frombuffer(bytearray(content[header_length:]), dtype=torch.uint8).reshape(sizes)


def load_mnist(split: Split, root: Optional[Path] = None) -> tuple[Tensor, Tensor]:
    """Images ``uint8 [n, 28, 28]`` and labels ``long [n]`` of the ``"train"`` (60,000) or ``"test"`` (10,000) split."""
    if split not in MNIST_FILES:
        raise ValueError(f"load_mnist: split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    images_file, labels_file = (fetch_file(remote, root) for remote in MNIST_FILES[split])
    images = read_idx(images_file, expected_dims=3)
    labels = read_idx(labels_file, expected_dims=1).long()
    if tuple(images.shape[1:]) != (28, 28):
        raise IDXFormatError(f"IDX file {images_file}: images are {tuple(images.shape[1:])}, expected 28x28")
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(
            f"MNIST {split}: {images_file} holds {images.shape[0]} images but {labels_file} holds {labels.shape[0]} labels"
        )
    if labels.max() > 9:
        raise IDXFormatError(f"IDX file {labels_file}: labels must lie in 0..9, found {labels.max().item()}")
    return images, labels


def scale_images(images: Tensor) -> Tensor:
    """``uint8 [B, 28, 28]`` pixels to ``float32 [B, 1, 28, 28]`` in ``[-1, 1]``."""
    if images.dtype != torch.uint8:
        raise TypeError(f"scale_images: expected uint8 pixels, got {images.dtype}")
    return images.unsqueeze(1).to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


def check_split_sizes(
    num_val: int, num_train: Optional[int], where: str, available: int = MNIST_SPLIT_SIZES["train"]
) -> None:
    """Raise ``ValueError`` (prefixed by ``where``) unless ``0 <= num_val < available`` and
    ``num_train`` is ``None`` or in ``[1, available - num_val]``."""
    if not 0 <= num_val < available:
        raise ValueError(f"{where}: num_val must lie in [0, {available}), got {num_val}")
    if num_train is not None and not 1 <= num_train <= available - num_val:
        raise ValueError(f"{where}: num_train must lie in [1, {available - num_val}], got {num_train}")


def train_split(
    images: Tensor, labels: Tensor, num_val: int, seed: int, num_train: Optional[int] = None
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Split the training file into training and validation pairs by a permutation seeded by ``seed``.

    With :math:`\\pi` the permutation of the ``N`` rows, the validation rows are
    :math:`\\pi_{0..V-1}` (``V = num_val``) and the training rows :math:`\\pi_{V..N-1}`, cut to
    their first ``num_train`` when given.

    Shapes:
        - ``images [N, ...]``, ``labels [N]``
        - returns ``(train_images, train_labels), (val_images, val_labels)``
    """
    check_split_sizes(num_val, num_train, "train_split", available=images.shape[0])
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"train_split: {images.shape[0]} images but {labels.shape[0]} labels")
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    val_index, train_index = order[:num_val], order[num_val:]
    if num_train is not None:
        train_index = train_index[:num_train]
    return (images[train_index], labels[train_index]), (images[val_index], labels[val_index])


class MNISTPairs(Dataset):
    """Image–label pairs as ``(x, y)`` or ``(y, x)``, images kept as bytes and scaled per item.

    Shapes:
        - item: ``x [1, 28, 28]`` float in ``[-1, 1]`` and ``y []`` long, ordered by ``state``
    """

    def __init__(self, images: Tensor, labels: Tensor, state: State = "image") -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"MNISTPairs: {images.shape[0]} images but {labels.shape[0]} labels")
        if state not in ("image", "label"):
            raise ValueError(f"MNISTPairs: state must be 'image' or 'label', got {state!r}")
        self.images = images
        self.labels = labels
        self.state = state

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = scale_images(self.images[index : index + 1])[0]
        y = self.labels[index]
        return (x, y) if self.state == "image" else (y, x)


class MNISTDataModule(pl.LightningDataModule):
    """MNIST train / validation / test loaders of image–label pairs.

    The validation set is ``num_val`` training images chosen by a seeded permutation of the
    60,000; the training set is the rest, or its first ``num_train`` in that permutation
    (:func:`train_split`). The test set is the official 10,000.

    Args:
        batch_size: training batch size (the last incomplete batch is dropped).
        state: ``"image"`` gives batches ``(x, y)``, ``"label"`` gives ``(y, x)`` (see the module docs).
        num_val: validation images held out of the training file.
        num_train: optional cap on the number of training images.
        seed: fixes the split, the per-epoch shuffling and the augmentation.
        max_shift: if positive, every training batch is translated by a random offset of up to
            this many pixels per axis and image (:func:`~structebm.data.augment.random_shift`,
            background filled with -1), drawn from ``(seed, global step)`` so that a resumed
            run sees the same batches; validation and test images are never shifted.
        eval_batch_size: batch size of the validation and test loaders.
        root: data root (default ``$STRUCTEBM_DATA``, else the user cache).

    Shapes:
        - batch: ``x [B, 1, 28, 28]`` float in ``[-1, 1]`` and ``y [B]`` long, in ``state`` order
    """

    def __init__(
        self,
        batch_size: int = 128,
        state: State = "image",
        num_val: int = 5_000,
        num_train: Optional[int] = None,
        seed: int = 0,
        eval_batch_size: int = 1_000,
        root: Optional[Path] = None,
        max_shift: int = 0,
    ) -> None:
        super().__init__()
        if state not in ("image", "label"):
            raise ValueError(f"MNISTDataModule: state must be 'image' or 'label', got {state!r}")
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MNISTDataModule: {name} must be a positive integer, got {value!r}")
        check_split_sizes(num_val, num_train, "MNISTDataModule")
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or not 0 <= max_shift < 14:
            raise ValueError(f"MNISTDataModule: max_shift must be an integer in [0, 14), got {max_shift!r}")
        self.batch_size = batch_size
        self.max_shift = max_shift
        self.state = state
        self.num_val = num_val
        self.num_train = num_train
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        self.root = None if root is None else Path(root)
        self.train_set: Optional[MNISTPairs] = None
        self.val_set: Optional[MNISTPairs] = None
        self.test_set: Optional[MNISTPairs] = None

    def setup(self, stage: Optional[str] = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            train, val = train_split(*load_mnist("train", self.root), self.num_val, self.seed, self.num_train)
            self.train_set = MNISTPairs(*train, state=self.state)
            self.val_set = MNISTPairs(*val, state=self.state)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = MNISTPairs(*load_mnist("test", self.root), state=self.state)

    def _loaded(self, dataset: Optional[MNISTPairs], name: str) -> MNISTPairs:
        if dataset is None:
            raise RuntimeError(f"MNISTDataModule: call setup() before {name}_dataloader()")
        return dataset

    def train_dataloader(self) -> DataLoader:
        dataset = self._loaded(self.train_set, "train")
        sampler = EpochShuffleSampler(len(dataset), seed=self.seed)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, drop_last=True)

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        """Shift the images of a training batch (see ``max_shift``); other batches pass unchanged."""
        if self.max_shift == 0 or self.trainer is None or not self.trainer.training:
            return batch
        generator = step_generator(self.seed, self.trainer.global_step)
        if self.state == "image":
            return random_shift(batch[0], self.max_shift, generator, fill=-1.0), batch[1]
        return batch[0], random_shift(batch[1], self.max_shift, generator, fill=-1.0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._loaded(self.val_set, "val"), batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._loaded(self.test_set, "test"), batch_size=self.eval_batch_size)
