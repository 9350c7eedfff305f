"""Image–label energies ``E(x, y)`` over images ``x`` and a small label set ``y ∈ {0..K-1}``.

Two energies give the energy of every label at once, ``label_energies(x) -> [B, K]``:

- :class:`ClassifierEnergy` reads a classifier's logits :math:`f(x)` as negative energies
  (Grathwohl et al., "Your classifier is secretly an energy based model", ICLR 2020, JEM):

  .. math::
      E(x, y) = -f(x)[y], \\qquad E(x) = -\\log \\sum_{y} e^{f(x)[y]}, \\qquad
      p(y \\mid x) = \\operatorname{softmax}(f(x))[y].

- :class:`EmbeddingConditionedEnergy` scores an image feature :math:`h(x)` against a learned
  embedding :math:`e(c)` of the condition with a small MLP head :math:`g`,
  :math:`E(x, c) = g([h(x); e(c)])`; the condition is a class label (embedding table) or a
  real vector (linear embedding).

**Two roles, one set of parameters.** The same batch of pairs feeds two kinds of terms: exact
NLL over the label (the state is ``y``, the condition is ``x``) and contrastive divergence over
the image (the state is ``x``, the condition is ``y``). The energy contract
``forward(state, condition)`` fixes which argument is sampled, so each role is a thin view
sharing the wrapped energy's parameters:

- :class:`LabelGivenImage` — ``forward(y, x)``, with exact ``log_partition(x)``,
  ``marginals(x)``, ``argmax(x)`` and ``sample(x, n, generator)`` over the ``K`` labels; it is
  what :class:`~structebm.objectives.exact_nll.ExactNLL` trains on batches ``(y, x)`` (the
  exact NLL is then the cross-entropy of the logits);
- :class:`ImageGivenLabel` — ``forward(x, y)`` with labels required, for contrastive divergence
  with Langevin chains over images and a per-class
  :class:`~structebm.samplers.chains.ReplayBuffer` (``num_classes=K``) on batches ``(x, y)``.

The base energies themselves take ``forward(x, y)`` and, with ``y=None``, give the marginal
:math:`E(x)` — JEM's unconditional generative term on batches ``(x,)``.
:class:`~structebm.data.mnist.MNISTDataModule` yields ``(x, y)`` or ``(y, x)`` accordingly.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor, nn

from structebm.energies.base import Energy
from structebm.energies.mlp import ACTIVATIONS

__all__ = [
    "HasLabelEnergies",
    "check_labels",
    "ClassifierEnergy",
    "EmbeddingConditionedEnergy",
    "LabelGivenImage",
    "ImageGivenLabel",
]


@runtime_checkable
class HasLabelEnergies(Protocol):
    """An energy over ``(x, y)`` that gives ``E(x, k)`` for every label ``k`` at once, ``[B, K]``."""

    num_classes: int

    def label_energies(self, x: Tensor) -> Tensor: ...


def check_labels(y: Tensor, batch_size: int, num_classes: int, where: str) -> Tensor:
    """Return ``y`` as long labels ``[batch_size]`` in ``[0, num_classes)``, or raise naming ``where``."""
    if not isinstance(y, Tensor) or y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        kind = y.dtype if isinstance(y, Tensor) else type(y).__name__
        raise TypeError(f"{where}: labels must be an integer Tensor [B], got {kind}")
    if y.shape != (batch_size,):
        raise ValueError(f"{where}: labels must have shape ({batch_size},) to match the images, got {tuple(y.shape)}")
    outside = (y < 0) | (y >= num_classes)
    if outside.any():
        rows = outside.nonzero().flatten()[:8].tolist()
        raise ValueError(f"{where}: labels must lie in [0, {num_classes}); rows {rows} hold {y[rows].tolist()}")
    return y.long()


def _marginal_energy(label_energies: Tensor) -> Tensor:
    return -torch.logsumexp(-label_energies, dim=1)


def _require_label_energies(energy: nn.Module, view: str) -> int:
    num_classes = getattr(energy, "num_classes", None)
    if not isinstance(energy, HasLabelEnergies) or isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(
            f"{view} needs an energy with label_energies(x) -> [B, K] and an integer num_classes "
            f"(ClassifierEnergy, or EmbeddingConditionedEnergy with num_classes); got {type(energy).__name__}"
        )
    return num_classes


class ClassifierEnergy(Energy):
    """JEM energy from a classifier's logits: ``E(x, y) = -f(x)[y]``, marginal ``-logsumexp f(x)``.

    Args:
        classifier: module mapping images to logits ``[B, num_classes]`` (e.g.
            :class:`~structebm.energies.cnn.ConvNet`).
        num_classes: number of labels ``K``.

    Shapes:
        - x: what ``classifier`` takes, batch first (``[B, 1, 28, 28]`` for MNIST)
        - c: labels ``[B]`` (integer) or ``None``
        - forward: ``[B]``; logits / label_energies: ``[B, K]``
    """

    def __init__(self, classifier: nn.Module, num_classes: int) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"ClassifierEnergy: num_classes must be an integer >= 2, got {num_classes!r}")
        self.classifier = classifier
        self.num_classes = num_classes

    def logits(self, x: Tensor) -> Tensor:
        """Classifier logits ``f(x)`` ``[B, K]``."""
        logits = self.classifier(x)
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[1] != self.num_classes:
            got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"ClassifierEnergy: the classifier returned {got}, expected logits [B, {self.num_classes}]")
        return logits

    def label_energies(self, x: Tensor) -> Tensor:
        """``E(x, k) = -f(x)[k]`` for every label, ``[B, K]``."""
        return -self.logits(x)

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """``E(x, c)`` for labels ``c``; the marginal ``E(x)`` when ``c`` is ``None``."""
        energies = self.label_energies(x)
        if c is None:
            return _marginal_energy(energies)
        labels = check_labels(c, energies.shape[0], self.num_classes, "ClassifierEnergy.forward")
        return energies.gather(1, labels[:, None]).squeeze(1)


class EmbeddingConditionedEnergy(Energy):
    """``E(x, c) = g([h(x); e(c)])``: image features scored against a learned embedding of ``c``.

    .. math::
        E(x, c) = w^\\top \\phi(W_L \\cdots \\phi(W_1 [h(x); e(c)] + b_1) \\cdots + b_L) + b,
        \\qquad e(c) = \\begin{cases} U_{c} & \\text{class label } c \\\\ U c + u & c \\in \\mathbb{R}^{d_c}. \\end{cases}

    With class labels, ``c=None`` gives the marginal :math:`E(x) = -\\log \\sum_k e^{-E(x, k)}`
    and :meth:`label_energies` evaluates the head on all ``K`` embeddings with one pass of
    the backbone.

    Args:
        backbone: module mapping images to features ``[B, feature_dim]`` (e.g.
            :class:`~structebm.energies.cnn.ConvNet` with ``out_features=feature_dim``).
        feature_dim: size of the backbone's features.
        num_classes: number of class labels (give this or ``condition_dim``).
        condition_dim: size of a real-valued condition vector.
        embedding_dim: size of the condition embedding.
        hidden: widths of the head's hidden layers.
        activation: one of :data:`~structebm.energies.mlp.ACTIVATIONS`.

    Shapes:
        - x: what ``backbone`` takes, batch first; c: labels ``[B]``, vectors ``[B, condition_dim]``,
          or ``None`` (class labels only)
        - forward: ``[B]``; label_energies: ``[B, K]``
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: Optional[int] = None,
        condition_dim: Optional[int] = None,
        embedding_dim: int = 32,
        hidden: Sequence[int] = (128,),
        activation: str = "silu",
    ) -> None:
        super().__init__()
        name = "EmbeddingConditionedEnergy"
        if (num_classes is None) == (condition_dim is None):
            raise ValueError(f"{name}: give exactly one of num_classes (labels) or condition_dim (vectors)")
        sizes = {"feature_dim": feature_dim, "embedding_dim": embedding_dim, "num_classes": num_classes or 1,
                 "condition_dim": condition_dim or 1}
        for key, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")
        widths = list(hidden)
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"{name}: hidden widths must be positive integers, got {widths}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"{name}: unknown activation '{activation}'; choose one of {', '.join(ACTIVATIONS)}")
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.condition_dim = condition_dim
        if num_classes is not None:
            self.embedding: nn.Module = nn.Embedding(num_classes, embedding_dim)
        else:
            self.embedding = nn.Linear(condition_dim, embedding_dim)
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip([feature_dim + embedding_dim] + widths, widths + [1]):
            layers += [nn.Linear(fan_in, fan_out), ACTIVATIONS[activation]()]
        self.head = nn.Sequential(*layers[:-1])

    def features(self, x: Tensor) -> Tensor:
        """Backbone features ``h(x)`` ``[B, feature_dim]``."""
        features = self.backbone(x)
        if not isinstance(features, Tensor) or features.dim() != 2 or features.shape[1] != self.feature_dim:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"EmbeddingConditionedEnergy: the backbone returned {got}, expected [B, {self.feature_dim}]")
        return features

    def embed(self, c: Tensor, batch_size: int) -> Tensor:
        """Condition embedding ``e(c)`` ``[B, embedding_dim]``."""
        where = "EmbeddingConditionedEnergy.forward"
        if self.num_classes is not None:
            return self.embedding(check_labels(c, batch_size, self.num_classes, where))
        if not isinstance(c, Tensor) or not c.is_floating_point() or c.shape != (batch_size, self.condition_dim):
            got = f"{tuple(c.shape)} {c.dtype}" if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(f"{where}: the condition must be a float Tensor ({batch_size}, {self.condition_dim}), got {got}")
        return self.embedding(c)

    def label_energies(self, x: Tensor) -> Tensor:
        """``E(x, k)`` for every class label ``k``, ``[B, K]`` (class-label conditions only)."""
        if self.num_classes is None:
            raise ValueError("EmbeddingConditionedEnergy.label_energies: the condition is a vector, not a class label")
        features = self.features(x)
        table = self.embedding.weight
        pairs = torch.cat(
            [features[:, None, :].expand(-1, self.num_classes, -1), table[None].expand(features.shape[0], -1, -1)], dim=2
        )
        return self.head(pairs).squeeze(-1)

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """``E(x, c)``; with class labels, the marginal ``E(x)`` when ``c`` is ``None``."""
        if c is None:
            if self.num_classes is None:
                raise ValueError("EmbeddingConditionedEnergy.forward: a vector-conditioned energy needs the condition c")
            return _marginal_energy(self.label_energies(x))
        features = self.features(x)
        return self.head(torch.cat([features, self.embed(c, features.shape[0])], dim=1)).squeeze(-1)


class LabelGivenImage(Energy):
    """View of an image–label energy with the **label as state** and the image as condition.

    .. math::
        E(y \\mid x) = E(x, y), \\qquad \\log Z(x) = \\log \\sum_{k} e^{-E(x, k)}, \\qquad
        p(y \\mid x) = e^{-E(x, y) - \\log Z(x)}.

    Shares the parameters of ``energy`` (it is a submodule). All inference is exact over the
    ``K`` labels. ``argmax`` is the mode, i.e. the label of lowest energy.

    Args:
        energy: an energy with ``label_energies(x) -> [B, K]`` and ``num_classes``.

    Shapes:
        - y: labels ``[B]``; c: images ``[B, ...]`` (required)
        - forward / log_partition / argmax: ``[B]``; marginals: ``[B, K]``; sample: ``[n, B]``
    """

    def __init__(self, energy: nn.Module) -> None:
        super().__init__()
        self.num_classes = _require_label_energies(energy, "LabelGivenImage")
        self.energy = energy

    def _label_energies(self, c: Optional[Tensor], where: str) -> Tensor:
        if c is None:
            raise ValueError(f"LabelGivenImage.{where}: the condition c (the images) is required")
        return self.energy.label_energies(c)

    def forward(self, y: Tensor, c: Optional[Tensor] = None) -> Tensor:
        energies = self._label_energies(c, "forward")
        labels = check_labels(y, energies.shape[0], self.num_classes, "LabelGivenImage.forward (state y)")
        return energies.gather(1, labels[:, None]).squeeze(1)

    def log_partition(self, c: Optional[Tensor] = None) -> Tensor:
        return torch.logsumexp(-self._label_energies(c, "log_partition"), dim=1)

    def marginals(self, c: Optional[Tensor] = None) -> Tensor:
        """``p(y = k | x)`` ``[B, K]``."""
        return torch.softmax(-self._label_energies(c, "marginals"), dim=1)

    def argmax(self, c: Optional[Tensor] = None) -> Tensor:
        """The most probable label ``argmin_k E(x, k)`` ``[B]``."""
        return self._label_energies(c, "argmax").argmin(dim=1)

    def sample(self, c: Optional[Tensor], n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` exact draws ``y ~ p(y | x)`` per image, ``[n, B]`` (long)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"LabelGivenImage.sample: n must be a positive integer, got {n!r}")
        with torch.no_grad():
            probabilities = torch.softmax(-self._label_energies(c, "sample"), dim=1)
        return torch.multinomial(probabilities, n, replacement=True, generator=generator).t()


class ImageGivenLabel(Energy):
    """View of an image–label energy with the **image as state** and the label as condition.

    .. math::
        E(x \\mid y) = E(x, y), \\qquad p(x \\mid y) \\propto e^{-E(x, y)}.

    Unlike the wrapped energy, the labels are required: a batch that lost its labels fails
    here instead of silently training the marginal ``E(x)``. Shares ``energy``'s parameters.

    Args:
        energy: an energy with ``label_energies(x) -> [B, K]`` and ``num_classes``.

    Shapes:
        - x: images ``[B, ...]``; c: labels ``[B]`` (required)
        - forward: ``[B]``
    """

    def __init__(self, energy: nn.Module) -> None:
        super().__init__()
        self.num_classes = _require_label_energies(energy, "ImageGivenLabel")
        self.energy = energy

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        if c is None:
            raise ValueError(
                "ImageGivenLabel.forward: the labels c are required (batches (x, y)); "
                "for the marginal E(x) use the wrapped energy with c=None"
            )
        return self.energy(x, c)
