"""Transformer building blocks: a sinusoidal position encoding and a Transformer encoder block.

Written with ``keras.ops`` and ``keras.layers`` only (the attention itself is Keras's
``MultiHeadAttention``), so both layers run unchanged on the TensorFlow, JAX and PyTorch backends,
and registered for serialisation under the package name ``kdl``: a model that uses them saves to
``.keras`` and loads (``safe_mode=True``) on any backend once ``kdl.layers`` has been imported
(``kdl.layers`` re-exports both).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["SinusoidalPositionEncoding", "TransformerEncoder"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="kdl")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """The fixed sinusoidal position encoding of Vaswani et al. (2017), interleaved.

    For step ``t`` and feature pair ``i`` (``0 <= i < dim / 2``), with ``w_i =
    max_wavelength ** (-2i / dim)``::

        PE[t, 2i]     = sin(t · w_i)
        PE[t, 2i + 1] = cos(t · w_i)

    Both features of a pair share one frequency, so for every offset ``k`` the encoding of step
    ``t + k`` is a fixed rotation of the encoding of step ``t`` (the matrix depends on ``k``, not
    on ``t``). The layer has no weights and returns the encoding only, with the shape of its input:
    add it yourself, ``x + SinusoidalPositionEncoding()(x)``. A mask on the input is passed on.

    Args:
        max_wavelength: the base of the geometric progression of wavelengths (10000 in the
            paper); the longest wavelength is ``2π · max_wavelength`` steps. A positive number.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: a ``(batch, steps, dim)`` tensor; only its shape is used.

    Input shape:
        ``(batch, steps, dim)`` with an even ``dim``.

    Output shape:
        ``(batch, steps, dim)``, the input shape, in the layer's compute dtype.

    Example:
    >>> import numpy as np
    >>> pe = SinusoidalPositionEncoding()
    >>> e = keras.ops.convert_to_numpy(pe(np.zeros((2, 5, 4), dtype="float32")))
    >>> e.shape, e[0, 0].tolist()  # step 0: sin(0) = 0 and cos(0) = 1 in every pair
    ((2, 5, 4), [0.0, 1.0, 0.0, 1.0])
    >>> bool(np.allclose(e[0, 3, :2], [np.sin(3), np.cos(3)]))  # pair 0 has frequency 1
    True
    """

    def __init__(self, max_wavelength: float = 10000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _is_number(max_wavelength) or not max_wavelength > 0:
            raise ValueError("`max_wavelength` must be a positive number, "
                             f"got max_wavelength={max_wavelength!r}")
        self.max_wavelength = max_wavelength
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError("SinusoidalPositionEncoding needs a (batch, steps, dim) input with a "
                             f"known dim, got input_shape={tuple(input_shape)}")
        if input_shape[-1] % 2:
            raise ValueError("SinusoidalPositionEncoding needs an even feature dimension (sin and "
                             f"cos pairs), got dim={input_shape[-1]}")

    def call(self, inputs: Any) -> Any:
        shape = ops.shape(inputs)
        dim = inputs.shape[-1]
        steps = ops.arange(shape[1], dtype="float32")
        exponents = ops.arange(0, dim, 2, dtype="float32") / dim  # 2i / dim
        frequencies = ops.power(float(self.max_wavelength), -exponents)
        angles = ops.expand_dims(steps, 1) * ops.expand_dims(frequencies, 0)  # (steps, dim/2)
        encoding = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1),
                               (shape[1], dim))  # interleave: sin, cos, sin, cos, ...
        return ops.broadcast_to(ops.cast(encoding, self.compute_dtype), shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_wavelength": self.max_wavelength}


@keras.saving.register_keras_serializable(package="kdl")
class TransformerEncoder(keras.layers.Layer):
    """One Transformer encoder block: self-attention and a feed-forward network, each residual.

    With ``d`` the feature dimension of the input (post-norm, ``normalize_first=False``, as in
    Vaswani et al. 2017)::

        h = LayerNorm(x + Dropout(MultiHeadAttention(x, x)))
        y = LayerNorm(h + Dropout(Dense(d)(Dropout(Dense(intermediate_dim, activation)(h)))))

    and with ``normalize_first=True`` (pre-norm, as in GPT-2 and most recent models), each
    LayerNorm moves to the start of its branch, leaving the residual path untouched::

        h = x + Dropout(MultiHeadAttention(LayerNorm(x), LayerNorm(x)))
        y = h + Dropout(Dense(d)(Dropout(Dense(intermediate_dim, activation)(LayerNorm(h)))))

    The attention has ``num_heads`` heads of ``key_dim = d // num_heads`` features each (``d``
    must be divisible by ``num_heads``). The block has ``4·d² + 4·d`` (attention: Q, K, V and
    output projections with biases) ``+ 2·d·f + f + d`` (feed-forward, ``f = intermediate_dim``)
    ``+ 4·d`` (two LayerNorms) parameters; ``num_heads`` does not change the count.

    Args:
        intermediate_dim: width ``f`` of the hidden layer of the feed-forward network.
        num_heads: number of attention heads, a positive integer that divides ``d``.
        dropout: rate in ``[0, 1)`` of the dropout on the attention weights, on both residual
            branches and inside the feed-forward network.
        activation: activation of the feed-forward hidden layer.
        normalize_first: False for post-norm (the original Transformer), True for pre-norm.
        layer_norm_epsilon: the epsilon of both LayerNormalization layers, a positive number.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: a ``(batch, steps, d)`` tensor.
        padding_mask: optional boolean ``(batch, steps)`` tensor, True at real tokens and False
            at padding. Padded steps are never attended to (and attend to nothing). When it is
            None, a Keras mask carried by ``inputs`` (e.g. from ``Embedding(mask_zero=True)``) is
            used instead, and passed on to the next layer.
        use_causal_mask: if True, step ``t`` attends only to steps ``<= t`` (a decoder-style
            block; combined with the padding mask when there is one).
        training: whether dropout is active.

    Input shape:
        ``(batch, steps, d)``.

    Output shape:
        ``(batch, steps, d)``.

    Example:
    >>> import numpy as np
    >>> block = TransformerEncoder(intermediate_dim=64, num_heads=4)
    >>> y = block(np.zeros((2, 10, 32), dtype="float32"))
    >>> d, f = 32, 64
    >>> tuple(y.shape), block.count_params() == 4*d*d + 4*d + 2*d*f + f + d + 4*d
    ((2, 10, 32), True)
    """

    def __init__(self, intermediate_dim: int, num_heads: int, dropout: float = 0.0,
                 activation: Any = "relu", normalize_first: bool = False,
                 layer_norm_epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, value in (("intermediate_dim", intermediate_dim), ("num_heads", num_heads)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {name}={value!r}")
        if not _is_number(dropout) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1), got dropout={dropout!r}")
        try:
            keras.activations.get(activation)
        except ValueError:
            raise ValueError("`activation` must name a Keras activation, "
                             f"got activation={activation!r}") from None
        if not isinstance(normalize_first, bool):
            raise TypeError("`normalize_first` must be a bool, "
                            f"got normalize_first={normalize_first!r}")
        if not _is_number(layer_norm_epsilon) or not layer_norm_epsilon > 0:
            raise ValueError("`layer_norm_epsilon` must be a positive number, "
                             f"got layer_norm_epsilon={layer_norm_epsilon!r}")
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.activation = activation
        self.normalize_first = normalize_first
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError("TransformerEncoder needs a (batch, steps, d) input with a known d, "
                             f"got input_shape={tuple(input_shape)}")
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(f"the feature dimension d={dim} must be divisible by "
                             f"num_heads={self.num_heads} (key_dim = d // num_heads)")
        policy = self.dtype_policy
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, dim // self.num_heads, dropout=self.dropout, name="attention",
            dtype=policy)
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm", dtype=policy)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout",
                                                      dtype=policy)
        self.ffn_inner = keras.layers.Dense(self.intermediate_dim, self.activation,
                                            name="ffn_inner", dtype=policy)
        self.ffn_outer = keras.layers.Dense(dim, name="ffn_outer", dtype=policy)
        self.ffn_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="ffn_norm", dtype=policy)
        self.ffn_dropout = keras.layers.Dropout(self.dropout, name="ffn_dropout", dtype=policy)
        self.attention.build(query_shape=input_shape, value_shape=input_shape)
        self.attention_norm.build(input_shape)
        self.ffn_inner.build(input_shape)
        self.ffn_outer.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.ffn_norm.build(input_shape)

    def call(self, inputs: Any, padding_mask: Any = None, use_causal_mask: bool = False,
             training: bool | None = None, mask: Any = None) -> Any:
        if padding_mask is None:
            padding_mask = mask
        attention_mask = None
        if padding_mask is not None:  # (batch, query steps, key steps): real queries, real keys
            padding_mask = ops.cast(padding_mask, "bool")
            attention_mask = ops.logical_and(ops.expand_dims(padding_mask, 2),
                                             ops.expand_dims(padding_mask, 1))
        x = inputs
        h = self.attention_norm(x) if self.normalize_first else x
        h = self.attention(h, h, attention_mask=attention_mask, use_causal_mask=use_causal_mask,
                           training=training)
        x = x + self.attention_dropout(h, training=training)
        if not self.normalize_first:
            x = self.attention_norm(x)
        h = self.ffn_norm(x) if self.normalize_first else x
        h = self.ffn_outer(self.ffn_dropout(self.ffn_inner(h), training=training))
        x = x + self.ffn_dropout(h, training=training)
        if not self.normalize_first:
            x = self.ffn_norm(x)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads, "dropout": self.dropout,
                "activation": keras.activations.serialize(keras.activations.get(self.activation)),
                "normalize_first": self.normalize_first,
                "layer_norm_epsilon": self.layer_norm_epsilon}
