"""Losses Keras lacks on every backend: contrastive (InfoNCE / NT-Xent / SupCon) and batch-hard triplet.

Both compare every row of a batch with every other row, so each anchor's loss depends on the whole
batch. ``y_true`` holds integer ids of shape ``(batch,)`` (or ``(batch, 1)``): rows with the same id
are positives of each other, rows with different ids negatives. ``y_pred`` holds the embeddings,
``(batch, dim)``. Anchors that have no positive (for the triplet loss: no positive or no negative)
carry no signal and are left out of the mean.

Reduction: with the default ``reduction="sum_over_batch_size"`` (or ``"mean"``,
``"mean_with_sample_weight"``) the loss is the mean over the anchors that count; ``"sum"`` gives
their sum; ``"none"`` returns one value per row, 0 for rows that do not count. A ``sample_weight``
multiplies the batch loss by the weights' mean; per-anchor weights are not supported.

Ids travel as floats (Keras casts ``y_true`` to the loss's dtype), so they are exact up to 2**24.

Everything is written with ``keras.ops``, runs inside ``model.fit`` on TensorFlow, JAX and PyTorch,
and is registered for saving under the package name ``"kdl"``.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

__all__ = ["InfoNCE", "TripletHardLoss"]

_EPS = 1e-12  # squared-norm floor of the L2 normalisation (as in tf.math.l2_normalize)
_FAR = 1e9  # stands for "excluded" in masked maxima and minima; finite, so gradients stay finite


def _ids_and_embeddings(y_true: Any, y_pred: Any, loss_name: str) -> tuple[Any, Any]:
    rank = len(y_pred.shape)
    if rank != 2:
        raise ValueError(
            f"{loss_name} expects embeddings `y_pred` of shape (batch, dim), got shape "
            f"{tuple(y_pred.shape)}"
        )
    return ops.reshape(y_true, (-1,)), y_pred


def _check_positive_float(value: Any, name: str, *, allow_zero: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"`{name}` must be {kind} finite number, got {name}={value!r}")
    return float(value)


class _AnchorLoss(keras.losses.Loss):
    """Shared reduction: mean (or sum) over the anchors that count, or per row with "none"."""

    def _reduce(self, per_anchor: Any, counts: Any) -> Any:
        counts = ops.cast(counts, per_anchor.dtype)
        per_anchor = per_anchor * counts  # exact zeros for anchors that do not count
        if self.reduction in (None, "none"):
            return per_anchor
        total = ops.sum(per_anchor)
        if self.reduction == "sum":
            return total
        return total / ops.maximum(ops.sum(counts), 1.0)


@keras.saving.register_keras_serializable(package="kdl")
class InfoNCE(_AnchorLoss):
    """InfoNCE on cosine similarities: SimCLR's NT-Xent with two views per id, and the
    supervised contrastive (SupCon) loss when the ids are class labels.

    Each row ``i`` is an anchor. With cosine similarities ``s_ij`` of the L2-normalised rows,
    logits ``s_ij / temperature`` and ``P(i)`` the other rows with ``i``'s id, the anchor's loss is

        -(1/|P(i)|) * sum_{p in P(i)} log( exp(s_ip/t) / sum_{a != i} exp(s_ia/t) )

    i.e. a softmax cross-entropy that must pick each positive out of all other rows of the batch.
    Anchors without a positive contribute nothing. A zero embedding is mapped to the zero vector
    (its similarities are 0) without NaN in values or gradients.

    Args:
        temperature: positive float that divides the similarities; small values sharpen the
            softmax and weight the hardest negatives most. Defaults to 0.1.
        reduction: see the module docstring. Defaults to ``"sum_over_batch_size"``: the mean over
            anchors that have a positive.
        name: optional name of the loss instance.
        dtype: dtype of the computation; defaults to ``keras.config.floatx()``.

    Call arguments:
        y_true: integer ids, shape ``(batch,)`` or ``(batch, 1)``.
        y_pred: embeddings, shape ``(batch, dim)`` (need not be normalised).

    Returns:
        A scalar, or with ``reduction="none"`` a ``(batch,)`` tensor.

    Example:
    >>> import numpy as np
    >>> views = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], "float32")
    >>> ids = np.array([0, 0, 1, 1])
    >>> loss = InfoNCE(temperature=0.5)
    >>> good = float(loss(ids, views))                      # positives are the nearest rows
    >>> bad = float(loss(np.array([0, 1, 0, 1]), views))   # positives are the farthest rows
    >>> round(good, 4), good < bad
    (0.2965, True)
    >>> InfoNCE(temperature=0.0)
    Traceback (most recent call last):
    ...
    ValueError: `temperature` must be a positive finite number, got temperature=0.0
    """

    def __init__(
        self,
        temperature: float = 0.1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "info_nce",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = _check_positive_float(temperature, "temperature", allow_zero=False)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ids, z = _ids_and_embeddings(y_true, y_pred, "InfoNCE")
        squared_norm = ops.sum(ops.square(z), axis=1, keepdims=True)
        z = z * ops.rsqrt(ops.maximum(squared_norm, _EPS))
        logits = ops.matmul(z, ops.transpose(z)) / self.temperature
        n = ops.shape(logits)[0]
        self_pair = ops.cast(ops.eye(n), "bool")
        # log-softmax over a != i: the diagonal gets a finite "minus infinity".
        log_prob = logits - ops.logsumexp(ops.where(self_pair, -_FAR, logits), axis=1,
                                          keepdims=True)
        positive = ops.logical_and(ops.equal(ids[:, None], ids[None, :]),
                                   ops.logical_not(self_pair))
        positive = ops.cast(positive, logits.dtype)
        n_positive = ops.sum(positive, axis=1)
        per_anchor = -ops.sum(positive * log_prob, axis=1) / ops.maximum(n_positive, 1.0)
        return self._reduce(per_anchor, n_positive > 0)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="kdl")
class TripletHardLoss(_AnchorLoss):
    """Batch-hard triplet loss on Euclidean distances (Hermans, Beyer & Leibe, 2017).

    For every anchor ``i`` the batch supplies its hardest triplet: the farthest positive (same
    id, other row) and the nearest negative (other id). The anchor's loss is
    ``max(d(i, p_far) - d(i, n_near) + margin, 0)``; the loss is the mean over anchors that have
    both a positive and a negative. Distances are computed from row differences (not from a Gram
    matrix), so identical embeddings are at distance exactly 0, and the square root is guarded
    so that its gradient at 0 is 0 instead of NaN. Memory grows as ``batch**2 * dim``.

    Args:
        margin: non-negative float, the gap required between the hardest negative and the
            hardest positive distance. Defaults to 1.0.
        reduction: see the module docstring. Defaults to ``"sum_over_batch_size"``: the mean over
            anchors with a positive and a negative.
        name: optional name of the loss instance.
        dtype: dtype of the computation; defaults to ``keras.config.floatx()``.

    Call arguments:
        y_true: integer labels, shape ``(batch,)`` or ``(batch, 1)``.
        y_pred: embeddings, shape ``(batch, dim)``. Not normalised here: normalise in the model
            (e.g. ``keras.layers.UnitNormalization``) if the margin should be on a fixed scale.

    Returns:
        A scalar, or with ``reduction="none"`` a ``(batch,)`` tensor.

    Example:
    >>> import numpy as np
    >>> points = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 1.0]], "float32")
    >>> float(TripletHardLoss(margin=1.0)(np.array([0, 0, 1, 1]), points))  # 1 - 3 + 1 < 0
    0.0
    >>> float(TripletHardLoss(margin=1.0)(np.array([0, 1, 0, 1]), points))  # 3 - 1 + 1
    3.0
    >>> TripletHardLoss(margin=-1)
    Traceback (most recent call last):
    ...
    ValueError: `margin` must be a non-negative finite number, got margin=-1
    """

    def __init__(
        self,
        margin: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "triplet_hard_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = _check_positive_float(margin, "margin", allow_zero=True)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels, x = _ids_and_embeddings(y_true, y_pred, "TripletHardLoss")
        squared = ops.sum(ops.square(x[:, None, :] - x[None, :, :]), axis=-1)
        nonzero = squared > 0
        # sqrt'(0) is infinite: take the root of 1 where the distance is 0, then zero it, so
        # the gradient there is 0 * finite instead of 0 * inf = NaN.
        distance = ops.where(nonzero, ops.sqrt(ops.where(nonzero, squared, 1.0)), 0.0)
        n = ops.shape(distance)[0]
        same = ops.equal(labels[:, None], labels[None, :])
        positive = ops.logical_and(same, ops.logical_not(ops.cast(ops.eye(n), "bool")))
        negative = ops.logical_not(same)
        hardest_positive = ops.max(ops.where(positive, distance, -_FAR), axis=1)
        hardest_negative = ops.min(ops.where(negative, distance, _FAR), axis=1)
        per_anchor = ops.relu(hardest_positive - hardest_negative + self.margin)
        counts = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
        return self._reduce(per_anchor, counts)

    def get_config(self) -> dict:
        return {**super().get_config(), "margin": self.margin}
