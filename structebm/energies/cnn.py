"""Small convolutional backbones for 28×28 images (MNIST-sized), used inside image energies.

A backbone maps a batch of images to feature vectors or logits; it is not an energy by
itself. :class:`~structebm.energies.image_label.ClassifierEnergy` reads its output as
class logits :math:`f(x) \\in \\mathbb{R}^K`, and
:class:`~structebm.energies.image_label.EmbeddingConditionedEnergy` as features :math:`h(x)`.

Two shapes are provided:

- :class:`ConvNet` — strided 3×3 convolutions with a smooth activation, then a linear layer
  on the flattened final feature map (for a fixed image size; on MNIST it learns much faster
  than a global average pool, whose receptive field is too small at this depth):

  .. math::
      h_0 = x, \\quad h_l = \\phi(\\mathrm{conv}_l(h_{l-1})), \\quad
      f(x) = W \\operatorname{vec}(h_L) + b.

- :class:`WideResNet` — a residual network in the style of Zagoruyko & Komodakis (BMVC 2016),
  without batch normalisation (as in JEM, Grathwohl et al., ICLR 2020, where batch statistics
  break sampling): each block is :math:`h + \\mathrm{conv}(\\phi(\\mathrm{conv}(\\phi(h))))`,
  with a 1×1 convolution on the shortcut when the width or resolution changes.

A smooth activation (SiLU, a.k.a. Swish, by default) keeps :math:`\\nabla_x E` smooth, which
Langevin samplers rely on. Optional spectral normalisation (Miyato et al., ICLR 2018) bounds
each layer's Lipschitz constant.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as spectral_normalise

from structebm.energies.mlp import ACTIVATIONS

__all__ = ["ConvNet", "WideResNet", "check_images"]


def check_images(x: Tensor, in_channels: int, where: str) -> None:
    """Raise a ``ValueError`` naming ``where`` unless ``x`` is a finite float batch ``[B, in_channels, H, W]``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected images as a Tensor [B, {in_channels}, H, W], got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{where}: expected images of shape [B, {in_channels}, H, W], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{where}: images must be floating point (scaled to [-1, 1]), got dtype {x.dtype}")


def _check_widths(widths: Sequence[int], name: str, owner: str) -> list[int]:
    values = list(widths)
    if not values or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in values):
        raise ValueError(f"{owner}: {name} must be a non-empty sequence of positive integers, got {values}")
    return values


def _check_common(in_channels: int, out_features: int, activation: str, owner: str) -> None:
    for name, value in (("in_channels", in_channels), ("out_features", out_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{owner}: unknown activation '{activation}'; choose one of {', '.join(ACTIVATIONS)}")


def _maybe_normalised(layer: nn.Module, spectral_norm: bool) -> nn.Module:
    return spectral_normalise(layer) if spectral_norm else layer


class ConvNet(nn.Module):
    """Strided convolutions + linear head on the flattened feature map.

    Args:
        in_channels: image channels (1 for MNIST).
        out_features: output size (number of classes for logits, or a feature dimension).
        widths: channels of the convolutions; every layer after the first halves the
            resolution (stride 2), so ``(32, 64, 128)`` maps 28×28 to 7×7.
        activation: one of :data:`~structebm.energies.mlp.ACTIVATIONS` (default ``"silu"``).
        spectral_norm: spectral normalisation on every convolution and the head.
        image_size: side of the square input images.

    Shapes:
        - x: ``[B, in_channels, image_size, image_size]`` floating point
        - output: ``[B, out_features]``
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_features: int = 10,
        widths: Sequence[int] = (32, 64, 128),
        activation: str = "silu",
        spectral_norm: bool = False,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        _check_common(in_channels, out_features, activation, "ConvNet")
        channels = _check_widths(widths, "widths", "ConvNet")
        _check_widths([image_size], "image_size", "ConvNet")
        self.in_channels = in_channels
        self.out_features = out_features
        self.image_size = image_size
        layers: list[nn.Module] = []
        side = image_size
        for index, (fan_in, fan_out) in enumerate(zip([in_channels] + channels, channels)):
            stride = 1 if index == 0 else 2
            conv = nn.Conv2d(fan_in, fan_out, kernel_size=3, stride=stride, padding=1)
            layers += [_maybe_normalised(conv, spectral_norm), ACTIVATIONS[activation]()]
            side = (side - 1) // stride + 1
        self.features = nn.Sequential(*layers)
        self.head = _maybe_normalised(nn.Linear(channels[-1] * side * side, out_features), spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_channels, "ConvNet")
        if x.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(f"ConvNet: expected {self.image_size}x{self.image_size} images, got {tuple(x.shape)}")
        return self.head(self.features(x).flatten(1))


class _ResidualBlock(nn.Module):
    """Pre-activation residual block without normalisation: ``h + conv(φ(conv(φ(h))))``."""

    def __init__(self, fan_in: int, fan_out: int, stride: int, activation: str, spectral_norm: bool) -> None:
        super().__init__()
        self.act_in = ACTIVATIONS[activation]()
        self.conv_in = _maybe_normalised(nn.Conv2d(fan_in, fan_out, 3, stride=stride, padding=1), spectral_norm)
        self.act_out = ACTIVATIONS[activation]()
        self.conv_out = _maybe_normalised(nn.Conv2d(fan_out, fan_out, 3, stride=1, padding=1), spectral_norm)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or fan_in != fan_out:
            self.shortcut = _maybe_normalised(nn.Conv2d(fan_in, fan_out, 1, stride=stride), spectral_norm)

    def forward(self, h: Tensor) -> Tensor:
        return self.shortcut(h) + self.conv_out(self.act_out(self.conv_in(self.act_in(h))))


class WideResNet(nn.Module):
    """Wide residual network without batch normalisation (JEM-style backbone).

    A 3×3 stem convolution, then one stage per entry of ``widths`` with ``blocks_per_stage``
    residual blocks (the first block of every stage after the first halves the resolution),
    a final activation, a global average pool and a linear head. ``widths=(16k, 32k, 64k)``
    with ``blocks_per_stage=n`` is WRN-(6n+4)-k of Zagoruyko & Komodakis.

    Args:
        in_channels: image channels.
        out_features: output size.
        widths: channels of the stages.
        blocks_per_stage: residual blocks per stage (at least 1).
        stem_width: channels of the stem convolution.
        activation: one of :data:`~structebm.energies.mlp.ACTIVATIONS`.
        spectral_norm: spectral normalisation on every convolution and the head.

    Shapes:
        - x: ``[B, in_channels, H, W]`` floating point
        - output: ``[B, out_features]``
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_features: int = 10,
        widths: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int = 1,
        stem_width: int = 16,
        activation: str = "silu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_common(in_channels, out_features, activation, "WideResNet")
        channels = _check_widths(widths, "widths", "WideResNet")
        _check_widths([blocks_per_stage, stem_width], "blocks_per_stage and stem_width", "WideResNet")
        self.in_channels = in_channels
        self.out_features = out_features
        blocks: list[nn.Module] = [_maybe_normalised(nn.Conv2d(in_channels, stem_width, 3, padding=1), spectral_norm)]
        fan_in = stem_width
        for stage, fan_out in enumerate(channels):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(_ResidualBlock(fan_in, fan_out, stride, activation, spectral_norm))
                fan_in = fan_out
        blocks.append(ACTIVATIONS[activation]())
        self.features = nn.Sequential(*blocks)
        self.head = _maybe_normalised(nn.Linear(fan_in, out_features), spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_channels, "WideResNet")
        return self.head(self.features(x).mean(dim=(2, 3)))
