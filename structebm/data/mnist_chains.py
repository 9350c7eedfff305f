"""The MNIST chain source of the image–label recipe: class Gaussians fitted on MNIST's training split.

YAML configs cannot pass image tensors, so :class:`MNISTClassGaussianReplayBuffer` loads the
MNIST training images itself and fits the class Gaussians of
:class:`~structebm.samplers.class_gaussian.ClassGaussianReplayBuffer` on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from structebm.data.mnist import check_split_sizes, load_mnist, scale_images, train_split
from structebm.samplers.class_gaussian import ClassGaussianReplayBuffer
from structebm.spaces import ContinuousSpace

__all__ = ["MNISTClassGaussianReplayBuffer"]


class MNISTClassGaussianReplayBuffer(ClassGaussianReplayBuffer):
    """A :class:`~structebm.samplers.class_gaussian.ClassGaussianReplayBuffer` over MNIST, fitted on its training split.

    The images are those of :class:`~structebm.data.mnist.MNISTDataModule`'s training set with the
    same ``num_val``, ``seed`` and ``num_train`` (:func:`~structebm.data.mnist.train_split`),
    scaled to ``[-1, 1]``; the space is ``ContinuousSpace((1, 28, 28), low=-1, high=1)`` and
    there is one class per digit.

    Args:
        gaussian_fraction: probability that a restart is drawn from the class Gaussian.
        capacity, reinit_prob, jitter: as for ``ClassGaussianReplayBuffer``.
        num_val, seed, num_train: the split, as for ``MNISTDataModule`` (give the data module's values).
        root: data root (default ``$STRUCTEBM_DATA``, else the user cache).

    Shapes:
        - storage: ``[capacity, 1, 28, 28]``; ``class_mean [10, 784]``, ``class_factor [10, 784, 784]``
    """

    def __init__(
        self, gaussian_fraction: float, capacity: int = 10_000, reinit_prob: float = 0.05, jitter: float = 1e-3,
        num_val: int = 5_000, seed: int = 0, num_train: Optional[int] = None, root: Optional[Path] = None,
    ) -> None:
        check_split_sizes(num_val, num_train, "MNISTClassGaussianReplayBuffer")
        (images, labels), _ = train_split(*load_mnist("train", root), num_val, seed, num_train)
        space = ContinuousSpace((1, 28, 28), low=-1.0, high=1.0)
        super().__init__(
            space, scale_images(images), labels, 10, gaussian_fraction,
            capacity=capacity, reinit_prob=reinit_prob, jitter=jitter,
        )
