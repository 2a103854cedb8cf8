"""Layers the chapters teach: a squeeze-and-excitation block, a 1-D convolution stack, and a
from-scratch bidirectional RNN with sum merge.

Every layer is written with ``keras.ops`` and ``keras.layers`` only, so it runs unchanged on the
TensorFlow, JAX and PyTorch backends, and is registered for serialisation under the package name
``kdl``: a model that uses it saves to ``.keras`` and loads (``safe_mode=True``) on any backend
once ``kdl.layers`` has been imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from kdl.attention import SinusoidalPositionEncoding, TransformerEncoder

__all__ = ["Conv1DStack", "SinusoidalPositionEncoding", "SqueezeExcitation", "SummingBidirectional",
           "TransformerEncoder"]

_PADDINGS = ("same", "valid", "causal")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_activation(name: str, value: Any) -> Any:
    try:
        keras.activations.get(value)
    except ValueError:
        raise ValueError(f"`{name}` must name a Keras activation, got {name}={value!r}") from None
    return value


def _per_block(name: str, value: Any, num_blocks: int, allow_none: bool = False) -> tuple:
    """Broadcast an int (or None) to every block, or check a per-block sequence."""
    def ok(v: Any) -> bool:
        return (_is_int(v) and v >= 1) or (allow_none and v is None)

    values = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if values is None and ok(value):
        return (value,) * num_blocks
    if values is not None and len(values) == num_blocks and all(ok(v) for v in values):
        return values
    what = "a positive integer" + (" or None" if allow_none else "")
    raise ValueError(
        f"`{name}` must be {what}, or a sequence of {num_blocks} of them (one per block), "
        f"got {name}={value!r}"
    )


@keras.saving.register_keras_serializable(package="kdl")
class SqueezeExcitation(keras.layers.Layer):
    """Squeeze-and-excitation block (Hu et al., 2018): learned per-channel attention.

    *Squeeze*: average every channel over all non-channel axes, giving ``z`` of shape
    ``(batch, channels)``. *Excitation*: ``s = gate(W2 · activation(W1 · z))`` with a
    bottleneck of ``channels // ratio`` units. *Scale*: multiply each channel of the input by its
    weight in ``s``. The block has ``2·C·(C//r) + C//r + C`` parameters. With a mask (padded
    sequences), the squeeze averages over the unmasked steps only, and the mask is passed on.

    Args:
        ratio: reduction ratio ``r``, a positive integer; ``channels // ratio`` must be at least 1.
        activation: activation of the bottleneck layer (the paper's ReLU).
        gate: activation giving the channel weights (the paper's sigmoid, weights in (0, 1)).
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: a channels-last tensor of rank 3 ``(batch, steps, channels)`` or rank 4
            ``(batch, height, width, channels)`` (rank 5 works too).
        mask: optional boolean ``(batch, steps)`` mask, for rank-3 inputs.

    Input shape:
        ``(batch, ..., channels)``, rank 3 or more, with a known number of channels.

    Output shape:
        The input shape. ``channel_weights(x)`` returns the ``(batch, channels)`` weights.

    Example:
    >>> import numpy as np
    >>> se = SqueezeExcitation(ratio=16)
    >>> x = np.ones((2, 8, 8, 64), dtype="float32")
    >>> tuple(se(x).shape), se.count_params(), tuple(se.channel_weights(x).shape)
    ((2, 8, 8, 64), 580, (2, 64))
    """

    def __init__(self, ratio: int = 16, activation: Any = "relu", gate: Any = "sigmoid",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _is_int(ratio) or ratio < 1:
            raise ValueError(f"`ratio` must be a positive integer, got ratio={ratio!r}")
        self.ratio = ratio
        self.activation = _check_activation("activation", activation)
        self.gate = _check_activation("gate", gate)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 3 or input_shape[-1] is None:
            raise ValueError(
                "SqueezeExcitation needs a channels-last input of rank 3 or 4 with a known "
                f"number of channels, got input_shape={tuple(input_shape)}"
            )
        channels = input_shape[-1]
        hidden = channels // self.ratio
        if hidden < 1:
            raise ValueError(
                f"`ratio`={self.ratio} leaves no hidden unit for {channels} channels "
                f"({channels} // {self.ratio} = 0); use a ratio of at most {channels}"
            )
        self.reduce = keras.layers.Dense(hidden, self.activation, name="reduce",
                                         dtype=self.dtype_policy)
        self.expand = keras.layers.Dense(channels, self.gate, name="expand",
                                         dtype=self.dtype_policy)
        self.reduce.build((input_shape[0], channels))
        self.expand.build((input_shape[0], hidden))

    def channel_weights(self, inputs: Any, mask: Any = None) -> Any:
        """Return the excitation ``s``, one weight per sample and channel: ``(batch, channels)``."""
        if not self.built:
            self.build(tuple(inputs.shape))
        axes = tuple(range(1, len(inputs.shape) - 1))
        if mask is None:
            squeezed = ops.mean(inputs, axis=axes)
        else:  # mean over the unmasked steps of a (batch, steps, channels) input
            weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
            total = ops.sum(inputs * weights, axis=1)
            squeezed = total / ops.maximum(ops.sum(weights, axis=1), 1.0)
        return self.expand(self.reduce(squeezed))

    def call(self, inputs: Any, mask: Any = None) -> Any:
        weights = self.channel_weights(inputs, mask)
        shape = (-1,) + (1,) * (len(inputs.shape) - 2) + (inputs.shape[-1],)
        return inputs * ops.reshape(ops.cast(weights, inputs.dtype), shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "ratio": self.ratio,
                "activation": keras.activations.serialize(keras.activations.get(self.activation)),
                "gate": keras.activations.serialize(keras.activations.get(self.gate))}


@keras.saving.register_keras_serializable(package="kdl")
class Conv1DStack(keras.layers.Layer):
    """A stack of Conv1D blocks, as one serialisable layer.

    Block ``i`` computes ``conv -> [batch norm] -> activation -> [squeeze-excitation]
    -> [+ shortcut] -> [max pooling] -> [dropout]``. Convolutions drop their bias when batch norm
    follows. With ``residual=True`` the shortcut is the block input, or a 1x1 convolution of it
    (with the block's stride) when the width or the length changes; the add comes *before*
    pooling, so residual blocks combine freely with ``pool_size`` and ``strides``. Residual
    blocks need ``padding="same"`` or ``"causal"`` (``"valid"`` shortens the main path, so the
    shortcut would not line up: a ValueError). Causal padding keeps every output step from seeing
    later input steps, shortcut included.

    Args:
        filters: output channels of each block, a sequence of positive integers (or one int).
        kernel_size: an int (every block) or one int per block.
        strides: an int or one per block; ``strides > 1`` and ``dilation_rate > 1`` cannot be
            combined in one block (Keras's Conv1D forbids it).
        dilation_rate: an int or one per block, e.g. ``(1, 2, 4, 8)`` for a WaveNet-style stack.
        padding: ``"same"``, ``"valid"`` or ``"causal"``, for every convolution.
        activation: activation after each convolution (after batch norm), e.g. ``"relu"``.
        batch_norm: whether to put a BatchNormalization after each convolution.
        pool_size: None, an int, or one int-or-None per block: max pooling with
            ``strides=pool_size`` and ``"valid"`` padding at the end of the block.
        dropout: dropout rate in ``[0, 1)`` at the end of each block.
        se_ratio: None, or the ratio of a SqueezeExcitation inside every block.
        residual: whether each block adds a shortcut from its input.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: a ``(batch, steps, channels)`` tensor.
        training: whether batch norm and dropout run in training mode.

    Input shape:
        ``(batch, steps, channels)``; ``steps`` may be None.

    Output shape:
        ``(batch, new_steps, filters[-1])``, see ``compute_output_shape``;
        ``receptive_field()`` gives the number of input steps one output step sees.

    Example:
    >>> stack = Conv1DStack(filters=(8, 8, 8, 8), kernel_size=2, dilation_rate=(1, 2, 4, 8),
    ...                     padding="causal")
    >>> stack.receptive_field()
    16
    >>> stack.compute_output_shape((None, 100, 3))
    (None, 100, 8)
    >>> Conv1DStack(filters=(16, 32), kernel_size=5, padding="valid", pool_size=2
    ...             ).compute_output_shape((None, 100, 1))
    (None, 22, 32)
    """

    def __init__(self, filters: int | Sequence[int] = (32, 64),
                 kernel_size: int | Sequence[int] = 3,
                 strides: int | Sequence[int] = 1, dilation_rate: int | Sequence[int] = 1,
                 padding: str = "same", activation: Any = "relu", batch_norm: bool = False,
                 pool_size: int | Sequence[int | None] | None = None, dropout: float = 0.0,
                 se_ratio: int | None = None, residual: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if _is_int(filters):
            filters = (filters,)
        if (isinstance(filters, str) or not isinstance(filters, Sequence) or not filters
                or not all(_is_int(f) and f >= 1 for f in filters)):
            raise ValueError("`filters` must be a positive integer or a non-empty sequence of "
                             f"them, got filters={filters!r}")
        n = len(filters)
        self.filters = tuple(filters)
        self.kernel_size = _per_block("kernel_size", kernel_size, n)
        self.strides = _per_block("strides", strides, n)
        self.dilation_rate = _per_block("dilation_rate", dilation_rate, n)
        self.pool_size = _per_block("pool_size", pool_size, n, allow_none=True)
        for i, (s, d) in enumerate(zip(self.strides, self.dilation_rate)):
            if s > 1 and d > 1:
                raise ValueError(f"block {i} combines `strides`={s} with `dilation_rate`={d}; "
                                 "Conv1D supports strides > 1 or dilation_rate > 1, not both")
        if padding not in _PADDINGS:
            raise ValueError(f"`padding` must be one of {_PADDINGS}, got padding={padding!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1), got dropout={dropout!r}")
        if se_ratio is not None and (not _is_int(se_ratio) or se_ratio < 1):
            raise ValueError("`se_ratio` must be None or a positive integer, "
                             f"got se_ratio={se_ratio!r}")
        if se_ratio is not None and min(filters) // se_ratio < 1:
            raise ValueError(f"`se_ratio`={se_ratio} leaves no hidden unit for a block of "
                             f"{min(filters)} filters; use se_ratio <= {min(filters)}")
        for name, flag in (("batch_norm", batch_norm), ("residual", residual)):
            if not isinstance(flag, bool):
                raise TypeError(f"`{name}` must be a bool, got {name}={flag!r}")
        if residual and padding == "valid":
            raise ValueError("`residual=True` needs padding='same' or 'causal' so that the "
                             "shortcut keeps the block's length, got padding='valid'")
        self.padding = padding
        self.activation = _check_activation("activation", activation)
        self._act = keras.activations.get(activation)
        self.batch_norm = batch_norm
        self.dropout = float(dropout)
        self.se_ratio = se_ratio
        self.residual = residual

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError("Conv1DStack needs a (batch, steps, channels) input with known "
                             f"channels, got input_shape={tuple(input_shape)}")
        self.blocks = []
        shape = tuple(input_shape)
        for i, f in enumerate(self.filters):
            block = {"conv": keras.layers.Conv1D(
                f, self.kernel_size[i], strides=self.strides[i], padding=self.padding,
                dilation_rate=self.dilation_rate[i], use_bias=not self.batch_norm,
                name=f"conv_{i}", dtype=self.dtype_policy)}
            if self.batch_norm:
                block["norm"] = keras.layers.BatchNormalization(name=f"norm_{i}",
                                                                dtype=self.dtype_policy)
            if self.se_ratio is not None:
                block["se"] = SqueezeExcitation(self.se_ratio, name=f"se_{i}",
                                                dtype=self.dtype_policy)
            if self.residual and (shape[-1] != f or self.strides[i] > 1):
                block["shortcut"] = keras.layers.Conv1D(
                    f, 1, strides=self.strides[i], name=f"shortcut_{i}", dtype=self.dtype_policy)
            if self.pool_size[i] is not None:
                block["pool"] = keras.layers.MaxPooling1D(self.pool_size[i], name=f"pool_{i}",
                                                          dtype=self.dtype_policy)
            if self.dropout > 0:
                block["dropout"] = keras.layers.Dropout(self.dropout, name=f"dropout_{i}",
                                                        dtype=self.dtype_policy)
            block["conv"].build(shape)
            if "shortcut" in block:
                block["shortcut"].build(shape)
            shape = block["conv"].compute_output_shape(shape)
            for key in ("norm", "se"):
                if key in block:
                    block[key].build(shape)
            shape = self._block_output_shape(i, shape)
            self.blocks.append(block)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        for block in self.blocks:
            h = block["conv"](x)
            if "norm" in block:
                h = block["norm"](h, training=training)
            h = self._act(h)
            if "se" in block:
                h = block["se"](h)
            if self.residual:
                h = h + (block["shortcut"](x) if "shortcut" in block else x)
            if "pool" in block:
                h = block["pool"](h)
            if "dropout" in block:
                h = block["dropout"](h, training=training)
            x = h
        return x

    def _block_output_shape(self, i: int, conv_shape: tuple) -> tuple:
        """Shape after block ``i``'s pooling, given the shape after its convolution."""
        steps, pool = conv_shape[1], self.pool_size[i]
        if pool is not None and steps is not None:
            steps = steps // pool
        return (conv_shape[0], steps, self.filters[i])

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        batch, steps = input_shape[0], input_shape[1]
        for i in range(len(self.filters)):
            if steps is not None:
                stride = self.strides[i]
                if self.padding == "valid":
                    span = (self.kernel_size[i] - 1) * self.dilation_rate[i] + 1
                    steps = (steps - span) // stride + 1
                else:  # "same" and "causal" keep ceil(steps / stride) steps
                    steps = math.ceil(steps / stride)
            batch, steps, _ = self._block_output_shape(i, (batch, steps, None))
        return (batch, steps, self.filters[-1])

    def receptive_field(self) -> int:
        """Number of consecutive input steps one output step depends on (through the
        convolutions and poolings; a SqueezeExcitation gate also sees the whole sequence through
        its global average, which this count leaves out)."""
        field, jump = 1, 1  # jump: input steps between neighbouring positions at this depth
        for k, s, d, p in zip(self.kernel_size, self.strides, self.dilation_rate, self.pool_size):
            field += (k - 1) * d * jump
            jump *= s
            if p is not None:
                field += (p - 1) * jump
                jump *= p
        return field

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": list(self.filters),
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "dilation_rate": list(self.dilation_rate), "padding": self.padding,
                "activation": keras.activations.serialize(keras.activations.get(self.activation)),
                "batch_norm": self.batch_norm, "pool_size": list(self.pool_size),
                "dropout": self.dropout, "se_ratio": self.se_ratio, "residual": self.residual}


@keras.saving.register_keras_serializable(package="kdl")
class SummingBidirectional(keras.layers.Layer):
    """Bidirectional RNN whose two directions are *summed*, written out step by step.

    Two copies of ``layer`` are made from its config (its weights are not reused): a forward
    one, and a backward one with ``go_backwards=True``, which reads the sequence from its last
    step to its first. When the layer returns sequences, the backward output comes out in
    reversed time, so it is flipped back before the sum: step ``t`` then adds the forward state
    after ``x_1..x_t`` to the backward state after ``x_T..x_t``. (Adding the ``go_backwards``
    output without the flip pairs step ``t`` with step ``T + 1 - t``.) With a mask, both copies
    skip the padded steps and output zeros there, as ``keras.layers.Bidirectional`` does.
    For models use ``keras.layers.Bidirectional(layer, merge_mode="sum")``: this layer computes
    the same thing, to be read.

    Args:
        layer: a recurrent layer such as ``keras.layers.LSTM(8)`` or ``GRU(8)``, with
            ``go_backwards=False``, ``return_state=False`` and ``stateful=False``.
        **kwargs: base layer arguments; ``dtype`` defaults to the policy of ``layer``.

    Call arguments:
        inputs: a ``(batch, steps, features)`` tensor.
        mask: optional boolean ``(batch, steps)`` mask, e.g. from ``Embedding(mask_zero=True)``.
        training: passed to both copies (dropout).

    Input shape:
        ``(batch, steps, features)``.

    Output shape:
        ``(batch, steps, units)`` if ``layer.return_sequences``, else ``(batch, units)``.

    Example:
    >>> import numpy as np
    >>> bi = SummingBidirectional(keras.layers.LSTM(4, return_sequences=True))
    >>> y = bi(np.zeros((2, 5, 3), dtype="float32"))
    >>> tuple(y.shape), bi.count_params()  # two LSTMs of 4*(4*(3 + 4) + 4) parameters
    ((2, 5, 4), 256)
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs: Any) -> None:
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"`layer` must be a Keras recurrent layer, got layer={layer!r}")
        for attr in ("go_backwards", "return_sequences", "return_state", "stateful"):
            if not hasattr(layer, attr):
                raise ValueError(f"`layer` must be a recurrent layer with a `{attr}` attribute "
                                 f"(LSTM, GRU, SimpleRNN, RNN), got layer={layer!r}")
        for attr in ("go_backwards", "return_state", "stateful"):
            if getattr(layer, attr):
                raise ValueError(f"`layer` must have {attr}=False, got layer.{attr}=True")
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(**kwargs)
        self.return_sequences = layer.return_sequences
        self.forward_layer = self._copy(layer, "forward", go_backwards=False)
        self.backward_layer = self._copy(layer, "backward", go_backwards=True)
        self.supports_masking = True

    def _copy(self, layer: keras.layers.Layer, direction: str, go_backwards: bool) -> Any:
        config = keras.saving.serialize_keras_object(layer)
        name = layer.name.removeprefix("forward_").removeprefix("backward_")
        config["config"].update(name=f"{direction}_{name}", go_backwards=go_backwards,
                                # padded steps output zeros, so that the flip lines them up
                                zero_output_for_mask=self.return_sequences)
        return keras.saving.deserialize_keras_object(config)

    def build(self, input_shape: tuple) -> None:
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        forward = self.forward_layer(inputs, mask=mask, training=training)
        backward = self.backward_layer(inputs, mask=mask, training=training)
        if self.return_sequences:  # the backward copy emitted x_T's step first: undo that
            backward = ops.flip(backward, axis=1)
        return ops.cast(forward, self.compute_dtype) + ops.cast(backward, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.forward_layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if self.return_sequences else None

    def get_config(self) -> dict:
        return {**super().get_config(),
                "layer": keras.saving.serialize_keras_object(self.forward_layer)}

    @classmethod
    def from_config(cls, config: dict) -> SummingBidirectional:
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)
