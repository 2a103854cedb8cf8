"""Small model builders the chapters reuse: taggers, forecasters, classifiers.

Each function returns an **uncompiled** functional ``keras.Model`` whose layers have fixed,
readable names (``model.get_layer("bilstm")``), validates its arguments, and uses no ``Lambda``
layer, so every model saves to ``.keras`` and loads with ``safe_mode=True`` on any backend.
Each model's variables are created under a name scope of their own (``forecaster_2/gru_1/...``),
so that several models from one builder can be parts of one bigger model on every backend (see
:func:`_own_variable_paths`).
Recurrent models use Keras's own ``Bidirectional(..., merge_mode="sum")``; ``kdl.layers`` supplies
``Conv1DStack`` and ``SqueezeExcitation``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import keras
from keras import layers

from kdl.gan import GAN
from kdl.layers import (Conv1DStack, SinusoidalPositionEncoding, SqueezeExcitation,
                        TransformerEncoder)

__all__ = ["GAN", "conv1d_classifier", "forecaster", "se_cnn", "sequence_tagger", "text_classifier",
           "transformer_classifier"]

def _own_variable_paths(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """Build the model under a name scope unique to this call (``<builder>_<n>``).

    The builders give layers fixed names, so without a scope two models from one builder have
    variables with equal paths (``gru_1/gru_cell/kernel``). On the torch backend a model holding
    both then registers only one of each pair as a torch parameter (Keras keys them by path: its
    ``TorchLayer._track_variables``, discussed in keras-team/keras#19908), the other's gradients
    are never zeroed between steps, and it trains on accumulated gradients, silently. The layer
    names stay as documented; only the variables' paths get the prefix.
    """
    @functools.wraps(builder)
    def build(*args, **kwargs) -> keras.Model:
        prefix = builder.__name__
        with keras.name_scope(f"{prefix}_{keras.backend.get_uid(prefix)}"):
            return builder(*args, **kwargs)

    return build


FORECASTER_KINDS = ("dense", "conv1d", "gru", "lstm", "bilstm_sum", "conv1d_gru")


def _check_positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {name}={value!r}")


def _check_rate(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {name}={value!r}")


def _check_shape(name: str, value: object, rank: int, allow_none_first: bool = False) -> tuple:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == rank
    if ok:
        for i, dim in enumerate(value):
            if dim is None and i == 0 and allow_none_first:
                continue
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
                ok = False
    if not ok:
        steps = " (the first may be None)" if allow_none_first else ""
        raise ValueError(f"`{name}` must be a tuple of {rank} positive integers{steps}, "
                         f"got {name}={value!r}")
    return tuple(value)


@_own_variable_paths
def sequence_tagger(num_features: int | None = None, vocab_size: int | None = None, *,
                    num_tags: int, units: int = 64, embed_dim: int = 32,
                    mask_value: float | None = None, name: str = "sequence_tagger") -> keras.Model:
    """Return a per-time-step classifier: one softmax over ``num_tags`` labels at every step.

    ``tokens (batch, steps)`` -> Embedding(mask_zero=True) -> Bidirectional LSTM (sum merge,
    ``return_sequences=True``) -> ``TimeDistributed(Dense(num_tags, softmax))``. Give exactly one
    of ``vocab_size`` (integer token input, 0 = padding) and ``num_features`` (float features
    input; ``mask_value`` adds a ``Masking`` layer for padded steps). Steps are variable (None).
    ``num_tags`` is keyword-only and required. Train with integer tags ``(batch, steps)`` and
    ``sparse_categorical_crossentropy``; the mask keeps padded steps out of the loss.

    Example:
    >>> model = sequence_tagger(vocab_size=100, num_tags=5, units=8, embed_dim=4)
    >>> model.output_shape, model.count_params()
    ((None, None, 5), 1277)
    """
    if (num_features is None) == (vocab_size is None):
        raise ValueError("give exactly one of `num_features` and `vocab_size`, got "
                         f"num_features={num_features!r}, vocab_size={vocab_size!r}")
    for arg, value in (("num_tags", num_tags), ("units", units), ("embed_dim", embed_dim)):
        _check_positive_int(arg, value)
    if vocab_size is not None:
        _check_positive_int("vocab_size", vocab_size, minimum=2)
        inputs = keras.Input((None,), dtype="int32", name="tokens")
        x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    else:
        _check_positive_int("num_features", num_features)
        inputs = keras.Input((None, num_features), name="features")
        x = inputs if mask_value is None else layers.Masking(mask_value, name="masking")(inputs)
    x = layers.Bidirectional(layers.LSTM(units, return_sequences=True), merge_mode="sum",
                             name="bilstm")(x)
    outputs = layers.TimeDistributed(layers.Dense(num_tags, activation="softmax"), name="tags")(x)
    return keras.Model(inputs, outputs, name=name)


def _recurrent(kind: str, units: int, return_sequences: bool, dropout: float,
               recurrent_dropout: float, name: str) -> layers.Layer:
    rnn = layers.GRU if kind in ("gru", "conv1d_gru") else layers.LSTM
    layer = rnn(units, return_sequences=return_sequences, dropout=dropout,
                recurrent_dropout=recurrent_dropout, name=name)
    if kind == "bilstm_sum":
        return layers.Bidirectional(layer, merge_mode="sum", name=f"bi{name}")
    return layer


@_own_variable_paths
def forecaster(input_shape: Sequence[int | None], horizon: int = 1, kind: str = "conv1d_gru", *,
               units: int = 32, num_layers: int = 1, dropout: float = 0.0,
               recurrent_dropout: float = 0.0, filters: Sequence[int] = (32, 32),
               kernel_size: int = 5, name: str | None = None) -> keras.Model:
    """Return a model mapping a window ``(batch, steps, features)`` to ``(batch, horizon)``.

    Kinds (after Chollet's Jena-climate experiments):

    - ``"dense"``: Flatten -> ``num_layers`` x Dense(units, relu) (needs a fixed ``steps``);
    - ``"conv1d"``: Conv1DStack(filters, pooling 2) -> GlobalMaxPooling1D: blind to *where* in
      the window a pattern occurs, the lesson of that experiment;
    - ``"gru"``, ``"lstm"``, ``"bilstm_sum"`` (Bidirectional LSTM, sum merge): ``num_layers``
      stacked recurrent layers, each with ``dropout`` and ``recurrent_dropout``;
    - ``"conv1d_gru"``: Conv1DStack(filters, pooling 2) to shorten the sequence, then the GRUs.

    ``dropout`` also adds a Dropout layer before the linear ``Dense(horizon)`` head.

    Example:
    >>> model = forecaster((48, 3), horizon=6, kind="gru", units=8, num_layers=2)
    >>> model.output_shape, [layer.name for layer in model.layers[1:]]
    ((None, 6), ['gru_1', 'gru_2', 'forecast'])
    """
    if kind not in FORECASTER_KINDS:
        raise ValueError(f"`kind` must be one of {FORECASTER_KINDS}, got kind={kind!r}")
    steps, features = _check_shape("input_shape", input_shape, 2, allow_none_first=True)
    if kind == "dense" and steps is None:
        raise ValueError("kind='dense' flattens the window, so it needs a fixed number of steps, "
                         f"got input_shape={tuple(input_shape)!r}")
    for arg, value in (("horizon", horizon), ("units", units), ("num_layers", num_layers),
                       ("kernel_size", kernel_size)):
        _check_positive_int(arg, value)
    _check_rate("dropout", dropout)
    _check_rate("recurrent_dropout", recurrent_dropout)
    inputs = keras.Input((steps, features), name="window")
    x = inputs
    if kind == "dense":
        x = layers.Flatten(name="flatten")(x)
        for i in range(1, num_layers + 1):
            x = layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
    if kind in ("conv1d", "conv1d_gru"):
        x = Conv1DStack(filters, kernel_size, pool_size=2, name="conv_stack")(x)
    if kind == "conv1d":
        x = layers.GlobalMaxPooling1D(name="global_max_pool")(x)
    if kind in ("gru", "lstm", "bilstm_sum", "conv1d_gru"):
        base = "lstm" if kind in ("lstm", "bilstm_sum") else "gru"
        for i in range(1, num_layers + 1):
            x = _recurrent(kind, units, i < num_layers, dropout, recurrent_dropout,
                           f"{base}_{i}")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(horizon, name="forecast")(x)
    return keras.Model(inputs, outputs, name=name or f"{kind}_forecaster")


@_own_variable_paths
def text_classifier(vocab_size: int, num_classes: int, embed_dim: int = 32, units: int = 32, *,
                    dropout: float = 0.0, name: str = "text_classifier") -> keras.Model:
    """Return a sequence classifier: token ids ``(batch, steps)`` -> ``(batch, num_classes)``.

    Embedding(mask_zero=True, so id 0 is padding) -> Bidirectional LSTM (sum merge) ->
    [Dropout] -> Dense(num_classes, softmax). Binary tasks also use a 2-way softmax (one
    convention for every ``num_classes``: integer labels with
    ``sparse_categorical_crossentropy``), which has the same power as a 1-unit sigmoid.

    Example:
    >>> model = text_classifier(vocab_size=1000, num_classes=2, embed_dim=8, units=4)
    >>> model.output_shape, model.get_layer("bilstm").output.shape
    ((None, 2), (None, 4))
    """
    _check_positive_int("vocab_size", vocab_size, minimum=2)
    _check_positive_int("num_classes", num_classes, minimum=2)
    _check_positive_int("embed_dim", embed_dim)
    _check_positive_int("units", units)
    _check_rate("dropout", dropout)
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    x = layers.Bidirectional(layers.LSTM(units), merge_mode="sum", name="bilstm")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


@_own_variable_paths
def conv1d_classifier(input_shape: Sequence[int | None], num_classes: int, *,
                      filters: Sequence[int] = (32, 64), kernel_size: int = 3,
                      pool_size: int | None = 2, se_ratio: int | None = None,
                      batch_norm: bool = False, residual: bool = False, dropout: float = 0.0,
                      name: str = "conv1d_classifier") -> keras.Model:
    """Return a 1-D CNN classifier: Conv1DStack -> GlobalAveragePooling1D -> Dense softmax.

    ``se_ratio`` puts a SqueezeExcitation in every block (None: none). ``input_shape`` is
    ``(steps, channels)``; ``steps`` may be None.

    Example:
    >>> model = conv1d_classifier((64, 1), num_classes=3, filters=(8, 16), se_ratio=4)
    >>> model.output_shape, model.get_layer("conv_stack").output.shape
    ((None, 3), (None, 16, 16))
    """
    steps, channels = _check_shape("input_shape", input_shape, 2, allow_none_first=True)
    _check_positive_int("num_classes", num_classes, minimum=2)
    inputs = keras.Input((steps, channels), name="signal")
    x = Conv1DStack(filters, kernel_size, pool_size=pool_size, se_ratio=se_ratio,
                    batch_norm=batch_norm, residual=residual, dropout=dropout,
                    name="conv_stack")(inputs)
    x = layers.GlobalAveragePooling1D(name="global_avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


@_own_variable_paths
def se_cnn(input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10, *,
           filters: Sequence[int] = (16, 32), se_ratio: int | None = 4, dropout: float = 0.0,
           name: str | None = None) -> keras.Model:
    """Return a small 2-D CNN for 28x28 images, with a SqueezeExcitation after each conv.

    Each block is Conv2D(3x3, same, relu) -> [SqueezeExcitation(se_ratio)] -> MaxPooling2D(2);
    then GlobalAveragePooling2D -> [Dropout] -> Dense softmax. ``se_ratio=None`` builds the same
    network without SE blocks, so a chapter can compare the two at equal settings.

    Example:
    >>> with_se, without = se_cnn(), se_cnn(se_ratio=None)
    >>> with_se.count_params() - without.count_params()  # (2*16*4+4+16) + (2*32*8+8+32)
    700
    >>> with_se.get_layer("se_1").output.shape
    (None, 28, 28, 16)
    """
    _check_shape("input_shape", input_shape, 3)
    _check_positive_int("num_classes", num_classes, minimum=2)
    if (isinstance(filters, str) or not isinstance(filters, Sequence) or not filters
            or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in filters)):
        raise ValueError(f"`filters` must be a non-empty sequence of positive integers, "
                         f"got filters={filters!r}")
    if se_ratio is not None:
        _check_positive_int("se_ratio", se_ratio)
        if min(filters) // se_ratio < 1:
            raise ValueError(f"`se_ratio`={se_ratio} leaves no hidden unit for a block of "
                             f"{min(filters)} filters; use se_ratio <= {min(filters)}")
    _check_rate("dropout", dropout)
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv_{i}")(x)
        if se_ratio is not None:
            x = SqueezeExcitation(se_ratio, name=f"se_{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name or ("se_cnn" if se_ratio else "plain_cnn"))


@_own_variable_paths
def transformer_classifier(vocab_size: int, num_classes: int, max_length: int, *,
                           embed_dim: int = 32, num_heads: int = 2, intermediate_dim: int = 64,
                           num_layers: int = 1, dropout: float = 0.0,
                           name: str = "transformer_classifier") -> keras.Model:
    """Return a Transformer text classifier: ids ``(batch, max_length)`` -> class probabilities.

    Embedding(mask_zero=True, so id 0 is padding), multiplied by ``sqrt(embed_dim)`` as in
    Vaswani et al. (2017) so that the token vectors are not drowned by the position encoding
    (Keras initialises embeddings within ±0.05, the encoding lies in [-1, 1]) -> ``+``
    SinusoidalPositionEncoding -> ``num_layers`` x TransformerEncoder (post-norm; the embedding's
    mask keeps every block from attending to padding) -> GlobalAveragePooling1D (a mean over the
    real tokens only, through the same mask) -> [Dropout] -> Dense(num_classes, softmax). Train
    with integer labels and
    ``sparse_categorical_crossentropy``, as ``text_classifier``. ``embed_dim`` must be even (the
    position encoding pairs features) and divisible by ``num_heads``.

    Example:
    >>> model = transformer_classifier(vocab_size=1000, num_classes=2, max_length=50)
    >>> model.output_shape, model.get_layer("encoder_1").output.shape
    ((None, 2), (None, 50, 32))
    """
    _check_positive_int("vocab_size", vocab_size, minimum=2)
    _check_positive_int("num_classes", num_classes, minimum=2)
    for arg, value in (("max_length", max_length), ("embed_dim", embed_dim),
                       ("num_heads", num_heads), ("intermediate_dim", intermediate_dim),
                       ("num_layers", num_layers)):
        _check_positive_int(arg, value)
    _check_rate("dropout", dropout)
    if embed_dim % 2:
        raise ValueError(f"`embed_dim` must be even for the sinusoidal position encoding, "
                         f"got embed_dim={embed_dim}")
    if embed_dim % num_heads:
        raise ValueError(f"`embed_dim`={embed_dim} must be divisible by `num_heads`={num_heads}")
    inputs = keras.Input((max_length,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
    x = layers.Rescaling(embed_dim**0.5, name="scale_embedding")(x)
    positions = SinusoidalPositionEncoding(name="position_encoding")(x)
    x = layers.Add(name="add_positions")([x, positions])
    for i in range(1, num_layers + 1):
        x = TransformerEncoder(intermediate_dim, num_heads, dropout=dropout, name=f"encoder_{i}")(x)
    x = layers.GlobalAveragePooling1D(name="mean_over_tokens")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)
