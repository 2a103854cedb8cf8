"""kdl's Transformer blocks (SinusoidalPositionEncoding, TransformerEncoder,
transformer_classifier), checked the way Keras checks its own layers: shapes, parameter counts
against their formula, config round trips, a training step, masking by perturbation, mixed
precision, argument validation; plus the facts chapter 11 teaches with them (the encoding's
rotation property, the block written out in NumPy)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from kdl.layers import SinusoidalPositionEncoding, TransformerEncoder
from kdl.models import transformer_classifier

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 7, 8)).astype("float32")  # (batch, steps, d): shared, kernels are reused
MASK = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=bool)


def numpy(x) -> np.ndarray:
    return ops.convert_to_numpy(x)


def encoder_params(d: int, f: int) -> int:
    return (4 * d * d + 4 * d) + (2 * d * f + f + d) + 4 * d


def reference_encoding(steps: int, dim: int, max_wavelength: float = 10000.0) -> np.ndarray:
    t = np.arange(steps)[:, None]
    i = np.arange(dim // 2)[None, :]
    angles = t / max_wavelength ** (2 * i / dim)
    pe = np.zeros((steps, dim))
    pe[:, 0::2], pe[:, 1::2] = np.sin(angles), np.cos(angles)
    return pe


# --------------------------------------------------------------------- SinusoidalPositionEncoding


@pytest.mark.parametrize("shape, wavelength", [((2, 7, 8), 10000), ((1, 50, 16), 10000),
                                               ((3, 5, 6), 100.0)])
def test_position_encoding_has_input_shape_and_matches_the_formula(shape, wavelength):
    pe = SinusoidalPositionEncoding(max_wavelength=wavelength)
    out = numpy(pe(np.zeros(shape, dtype="float32")))
    assert out.shape == shape and pe.count_params() == 0
    assert pe.compute_output_shape(shape) == shape
    for row in out:  # the same encoding for every sequence of the batch
        np.testing.assert_allclose(row, reference_encoding(shape[1], shape[2], wavelength),
                                   atol=2e-5)


def test_position_encoding_of_step_t_plus_k_is_a_fixed_rotation_of_step_t():
    dim, k = 16, 5
    pe = numpy(SinusoidalPositionEncoding()(np.zeros((1, 60, dim), dtype="float32")))[0]
    w = 10000.0 ** (-np.arange(0, dim, 2) / dim)
    rotation = np.zeros((dim, dim))
    for i, wi in enumerate(w):
        c, s = np.cos(wi * k), np.sin(wi * k)
        rotation[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, s], [-s, c]]
    np.testing.assert_allclose(pe[:-k] @ rotation.T, pe[k:], atol=1e-4)
    assert np.abs(pe).max() <= 1.0 + 1e-6


def test_position_encoding_passes_the_mask_on_and_keeps_the_compute_dtype():
    pe = SinusoidalPositionEncoding()
    assert pe.compute_mask(X, MASK) is MASK
    mixed = SinusoidalPositionEncoding(dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(mixed(X).dtype) == "bfloat16"


def test_position_encoding_config_round_trip():
    pe = SinusoidalPositionEncoding(max_wavelength=500.0, name="pe")
    clone = SinusoidalPositionEncoding.from_config(pe.get_config())
    assert clone.get_config() == pe.get_config()
    np.testing.assert_array_equal(numpy(clone(X)), numpy(pe(X)))


def test_position_encoding_rejects_bad_arguments_naming_argument_and_value():
    for value in (0, -1.0, "10000", True):
        with pytest.raises(ValueError, match=rf"`max_wavelength` must .*max_wavelength={value!r}"):
            SinusoidalPositionEncoding(max_wavelength=value)
    with pytest.raises(ValueError, match="even feature dimension .*got dim=7"):
        SinusoidalPositionEncoding()(np.zeros((1, 3, 7), dtype="float32"))
    with pytest.raises(ValueError, match=r"input_shape=\(3, 8\)"):
        SinusoidalPositionEncoding()(X[:, 0])


# --------------------------------------------------------------------- TransformerEncoder


@pytest.mark.parametrize("d, f, heads", [(8, 16, 1), (8, 16, 4), (12, 5, 3), (32, 64, 8)])
def test_encoder_parameter_count_is_the_formula_whatever_the_number_of_heads(d, f, heads):
    block = TransformerEncoder(f, heads)
    block.build((None, None, d))
    assert block.count_params() == encoder_params(d, f)
    assert block.attention.count_params() == 4 * d * d + 4 * d


@pytest.mark.parametrize("normalize_first", [False, True])
def test_encoder_keeps_the_shape_also_symbolically(normalize_first):
    block = TransformerEncoder(16, 2, normalize_first=normalize_first)
    assert tuple(block(X).shape) == X.shape
    symbolic = TransformerEncoder(16, 2, normalize_first=normalize_first)(keras.Input((None, 8)))
    assert tuple(symbolic.shape) == (None, None, 8)


def _layer_norm(x, gamma, beta, eps):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _numpy_block(block: TransformerEncoder, x: np.ndarray, causal: bool = False) -> np.ndarray:
    """The block written out in NumPy from its weights (post- or pre-norm)."""
    a = block.attention
    w = {name: [numpy(v) for v in dense.weights] for name, dense in
         (("q", a.query_dense), ("k", a.key_dense), ("v", a.value_dense), ("o", a.output_dense))}
    ln1 = [numpy(v) for v in block.attention_norm.weights]
    ln2 = [numpy(v) for v in block.ffn_norm.weights]
    eps = block.layer_norm_epsilon

    def attention(h):
        q, k, v = (np.einsum("btd,dhk->bthk", h, w[n][0]) + w[n][1] for n in "qkv")
        scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
        if causal:
            steps = h.shape[1]
            scores = np.where(np.tril(np.ones((steps, steps), bool)), scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        out = np.einsum("bhqs,bshk->bqhk", weights, v)
        return np.einsum("bqhk,hkd->bqd", out, w["o"][0]) + w["o"][1]

    def ffn(h):
        (k1, b1), (k2, b2) = ([numpy(v) for v in d.weights] for d in (block.ffn_inner,
                                                                      block.ffn_outer))
        return np.maximum(h @ k1 + b1, 0) @ k2 + b2

    if block.normalize_first:
        x = x + attention(_layer_norm(x, *ln1, eps))
        return x + ffn(_layer_norm(x, *ln2, eps))
    x = _layer_norm(x + attention(x), *ln1, eps)
    return _layer_norm(x + ffn(x), *ln2, eps)


@pytest.mark.parametrize("normalize_first, causal", [(False, False), (True, False), (False, True)])
def test_encoder_is_the_block_written_out(normalize_first, causal):
    block = TransformerEncoder(16, 2, normalize_first=normalize_first)
    got = numpy(block(X, use_causal_mask=causal))
    np.testing.assert_allclose(got, _numpy_block(block, X.astype("float64"), causal), atol=1e-4)


def test_padding_mask_makes_real_steps_independent_of_padded_steps():
    block = TransformerEncoder(16, 2)
    x = X.copy()
    y = numpy(block(x, padding_mask=MASK))
    x[~MASK] = RNG.normal(scale=10.0, size=x[~MASK].shape)  # garbage in the padding
    y_perturbed = numpy(block(x, padding_mask=MASK))
    assert np.abs(y_perturbed - y)[MASK].max() < 1e-5
    for i, length in enumerate(MASK.sum(axis=1)):  # and equal to the unpadded sequence alone
        np.testing.assert_allclose(y[i, :length], numpy(block(x[i : i + 1, :length]))[0],
                                   atol=1e-5)
    unmasked = numpy(block(x))  # without the mask, the padding leaks into the real steps
    assert np.abs(unmasked - y_perturbed)[MASK].max() > 1e-2


def test_embedding_mask_zero_is_honoured_as_the_padding_mask_and_passed_on():
    tokens = np.where(MASK, RNG.integers(1, 20, size=MASK.shape), 0).astype("int32")
    embedding = layers.Embedding(20, 8, mask_zero=True)
    block = TransformerEncoder(16, 2)
    vectors = embedding(tokens)
    via_keras_mask = numpy(block(vectors))
    explicit = numpy(block(ops.take(embedding.embeddings, tokens, axis=0), padding_mask=MASK))
    np.testing.assert_allclose(via_keras_mask, explicit, atol=1e-6)
    # in a functional model, the mask reaches the block and goes on to the pooling
    inputs = keras.Input((None,), dtype="int32")
    h = TransformerEncoder(16, 2)(layers.Embedding(20, 8, mask_zero=True)(inputs))
    model = keras.Model(inputs, layers.GlobalAveragePooling1D()(h))
    longer = np.concatenate([tokens, np.zeros((3, 4), "int32")], axis=1)  # more padding
    np.testing.assert_allclose(numpy(model(longer)), numpy(model(tokens)), atol=1e-5)


def test_causal_mask_makes_step_t_independent_of_later_steps():
    block = TransformerEncoder(16, 2)
    y = numpy(block(X, use_causal_mask=True))
    for t in range(X.shape[1]):
        x = X.copy()
        x[:, t] += RNG.normal(scale=5.0, size=x[:, t].shape)
        moved = np.abs(numpy(block(x, use_causal_mask=True)) - y).max(axis=(0, 2))
        assert moved[:t].max(initial=0.0) < 1e-5 and moved[t] > 1e-3, (t, moved)


def test_causal_and_padding_masks_combine():
    block = TransformerEncoder(16, 2)
    y = numpy(block(X, padding_mask=MASK, use_causal_mask=True))
    x = X.copy()
    x[1, 3:] += 5.0  # step 3 of row 1 is real, steps 4-6 are padding
    moved = np.abs(numpy(block(x, padding_mask=MASK, use_causal_mask=True)) - y)
    assert moved[1, :3].max() < 1e-5 and moved[1, 3].max() > 1e-3
    assert moved[[0, 2]].max() == 0.0


def test_encoder_config_round_trip():
    block = TransformerEncoder(12, 4, dropout=0.1, activation="gelu", normalize_first=True,
                               layer_norm_epsilon=1e-6, name="block")
    expected = numpy(block(X))
    clone = TransformerEncoder.from_config(block.get_config())
    clone.build(X.shape)
    clone.set_weights(block.get_weights())
    assert clone.get_config() == block.get_config()
    np.testing.assert_allclose(numpy(clone(X)), expected, atol=1e-6)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_encoder_one_training_step_lowers_the_loss(normalize_first):
    inputs = keras.Input(X.shape[1:])
    h = TransformerEncoder(16, 2, dropout=0.1, normalize_first=normalize_first)(inputs)
    model = keras.Model(inputs, layers.Dense(1)(layers.Flatten()(h)))
    y = RNG.normal(size=(len(X), 1)).astype("float32")
    model.compile(keras.optimizers.SGD(0.01), "mse",
                  run_eagerly=keras.backend.backend() == "tensorflow")
    first = model.test_on_batch(X, y)
    for _ in range(3):
        model.train_on_batch(X, y)
    after = model.test_on_batch(X, y)
    assert float(after) < float(first), f"three SGD steps did not lower the loss: {first}, {after}"


def test_encoder_dropout_is_active_in_training_only():
    block = TransformerEncoder(16, 2, dropout=0.5)
    inference = numpy(block(X))
    np.testing.assert_array_equal(numpy(block(X, training=False)), inference)
    assert np.abs(numpy(block(X, training=True)) - inference).max() > 1e-3


@pytest.mark.parametrize("normalize_first", [False, True])
def test_encoder_mixed_precision(normalize_first):
    mixed = TransformerEncoder(16, 2, normalize_first=normalize_first, dtype="mixed_bfloat16")
    full = TransformerEncoder(16, 2, normalize_first=normalize_first)
    y_mixed = mixed(X, padding_mask=MASK)
    full.build(X.shape)
    full.set_weights(mixed.get_weights())
    assert keras.backend.standardize_dtype(y_mixed.dtype) == "bfloat16"
    assert {keras.backend.standardize_dtype(w.dtype) for w in mixed.weights} == {"float32"}
    got, want = numpy(ops.cast(y_mixed, "float32")), numpy(full(X, padding_mask=MASK))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[MASK], want[MASK], atol=0.1)


ENCODER_BAD_ARGUMENTS = [
    ({"intermediate_dim": 0}, ValueError,
     "`intermediate_dim` must be a positive integer, got intermediate_dim=0"),
    ({"intermediate_dim": 8.0}, ValueError, "intermediate_dim=8.0"),
    ({"num_heads": 0}, ValueError, "`num_heads` must be a positive integer, got num_heads=0"),
    ({"num_heads": True}, ValueError, "num_heads=True"),
    ({"dropout": 1.0}, ValueError, r"`dropout` must be a float in \[0, 1\), got dropout=1.0"),
    ({"dropout": -0.1}, ValueError, "dropout=-0.1"),
    ({"activation": "nope"}, ValueError, "`activation` must name a Keras activation, got "
                                         "activation='nope'"),
    ({"normalize_first": "yes"}, TypeError, "normalize_first='yes'"),
    ({"layer_norm_epsilon": 0}, ValueError, "layer_norm_epsilon=0"),
]


def test_encoder_rejects_bad_arguments_naming_argument_and_value():
    for kwargs, error, match in ENCODER_BAD_ARGUMENTS:
        arguments = {"intermediate_dim": 16, "num_heads": 2, **kwargs}
        with pytest.raises(error, match=match):
            TransformerEncoder(**arguments)


def test_encoder_rejects_a_dimension_the_heads_do_not_divide_naming_both():
    with pytest.raises(ValueError, match=r"d=8 must be divisible by num_heads=3"):
        TransformerEncoder(16, 3)(X)
    with pytest.raises(ValueError, match=r"input_shape=\(3, 8\)"):
        TransformerEncoder(16, 2)(X[:, 0])


# --------------------------------------------------------------------- transformer_classifier


def test_transformer_classifier_shapes_and_parameter_count():
    v, c, d, f = 50, 3, 16, 24
    model = transformer_classifier(v, c, 10, embed_dim=d, num_heads=4, intermediate_dim=f,
                                   num_layers=2, dropout=0.1)
    assert model.output_shape == (None, c)
    assert model.count_params() == v * d + 2 * encoder_params(d, f) + (d * c + c)
    tokens = np.array([[4, 9, 2, 0, 0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], "int32")
    proba = numpy(model(tokens))
    assert proba.shape == (2, c)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_transformer_classifier_ignores_padding():
    short = transformer_classifier(30, 2, 6, embed_dim=8, num_heads=2, intermediate_dim=8)
    long = transformer_classifier(30, 2, 11, embed_dim=8, num_heads=2, intermediate_dim=8)
    long.set_weights(short.get_weights())  # no weight depends on the length
    tokens = np.array([[5, 7, 9, 0, 0, 0], [3, 3, 3, 3, 3, 3]], "int32")
    padded = np.concatenate([tokens, np.zeros((2, 5), "int32")], axis=1)
    np.testing.assert_allclose(numpy(long(padded)), numpy(short(tokens)), atol=1e-5)


def test_transformer_classifier_learns_a_token_presence_task():
    rng = np.random.default_rng(1)
    tokens = rng.integers(2, 20, size=(256, 8)).astype("int32")
    labels = (tokens == 7).any(axis=1).astype("int32")
    model = transformer_classifier(20, 2, 8, embed_dim=16, num_heads=2, intermediate_dim=16)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(tokens, labels, epochs=15, batch_size=64, verbose=0)
    accuracy = model.evaluate(tokens, labels, verbose=0)[1]
    assert accuracy > 0.9, accuracy


def test_transformer_classifier_rejects_bad_arguments():
    cases = [({"vocab_size": 1}, "vocab_size=1"), ({"num_classes": 1}, "num_classes=1"),
             ({"max_length": 0}, "max_length=0"), ({"num_layers": 0}, "num_layers=0"),
             ({"dropout": 1.5}, "dropout=1.5"), ({"embed_dim": 15, "num_heads": 1},
                                                 "`embed_dim` must be even .*embed_dim=15"),
             ({"embed_dim": 12, "num_heads": 5}, "`embed_dim`=12 must be divisible by "
                                                 "`num_heads`=5")]
    for kwargs, match in cases:
        arguments = {"vocab_size": 10, "num_classes": 2, "max_length": 5, **kwargs}
        with pytest.raises(ValueError, match=match):
            transformer_classifier(**arguments)
