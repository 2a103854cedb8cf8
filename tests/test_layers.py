"""kdl.layers, checked the way Keras checks its own layers (shapes, parameter counts, config round
trips, a training step, masking, mixed precision, argument validation), plus the facts the chapters
teach with them: receptive fields by impulse response, and the bidirectional sum merge."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from kdl.layers import Conv1DStack, SqueezeExcitation, SummingBidirectional

RNG = np.random.default_rng(0)
# One (batch, steps, channels) input shared by most tests, so backends reuse compiled kernels.
X3 = RNG.normal(size=(3, 7, 8)).astype("float32")
MASK = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=bool)


def numpy(x) -> np.ndarray:
    return ops.convert_to_numpy(x)


def se_params(channels: int, ratio: int) -> int:
    hidden = channels // ratio
    return 2 * channels * hidden + hidden + channels


def lstm_params(features: int, units: int) -> int:
    return 4 * (units * (features + units) + units)


def compile_for_one_step(model: keras.Model) -> None:
    # Tiny models: TensorFlow is fastest eagerly, JAX with its default jit.
    model.compile(keras.optimizers.SGD(0.005), "mse",
                  run_eagerly=keras.backend.backend() == "tensorflow")


def assert_one_step_lowers_loss(layer: keras.layers.Layer, x: np.ndarray) -> None:
    """Two SGD steps on one batch: the loss Keras reports for the second (computed before its
    update, in training mode) is below the first's, so the first step lowered the loss."""
    inputs = keras.Input(x.shape[1:])
    h = layer(inputs)
    if len(h.shape) > 2:
        h = layers.Flatten()(h)
    model = keras.Model(inputs, layers.Dense(1)(h))
    y = RNG.normal(size=(len(x), 1)).astype("float32")
    compile_for_one_step(model)
    before = model.train_on_batch(x, y, return_dict=True)["loss"]
    after = model.train_on_batch(x, y, return_dict=True)["loss"]
    assert float(after) < float(before), f"one SGD step did not lower the loss: {before} -> {after}"


def assert_config_round_trip(layer: keras.layers.Layer, x: np.ndarray) -> None:
    expected = numpy(layer(x))
    clone = type(layer).from_config(layer.get_config())
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(numpy(clone(x)), expected, atol=1e-6)


def assert_mixed_precision(make, x: np.ndarray, atol: float) -> None:
    """A layer built with a mixed policy keeps float32 weights, computes in bfloat16, and agrees
    with its float32 twin up to bfloat16 rounding."""
    mixed, full = make("mixed_bfloat16"), make("float32")
    y_mixed = mixed(x)
    full.build(x.shape)
    full.set_weights(mixed.get_weights())
    assert keras.backend.standardize_dtype(y_mixed.dtype) == "bfloat16"
    assert {keras.backend.standardize_dtype(w.dtype) for w in mixed.weights} == {"float32"}
    np.testing.assert_allclose(numpy(ops.cast(y_mixed, "float32")), numpy(full(x)), atol=atol)


# --------------------------------------------------------------------- SqueezeExcitation


@pytest.mark.parametrize("shape, ratio",
                         [((2, 8, 8, 64), 16), ((2, 10, 12), 5), ((1, 3, 3, 3, 4), 2)])
def test_se_keeps_shape_and_has_formula_parameter_count(shape, ratio):
    se = SqueezeExcitation(ratio)
    x = RNG.normal(size=shape).astype("float32")
    assert tuple(se(x).shape) == shape
    assert se.compute_output_shape(shape) == shape
    assert se.count_params() == se_params(shape[-1], ratio)
    assert tuple(se.channel_weights(x).shape) == (shape[0], shape[-1])


def test_se_parameter_count_is_580_for_64_channels_and_ratio_16():
    se = SqueezeExcitation(16)
    se.build((None, 8, 8, 64))
    assert se.count_params() == 2 * 64 * 4 + 4 + 64 == 580


def test_se_is_squeeze_excite_scale_written_out():
    se = SqueezeExcitation(2)
    x = RNG.normal(size=(2, 5, 5, 6)).astype("float32")
    y = numpy(se(x))
    w1, b1, w2, b2 = (numpy(w) for w in se.weights)
    z = x.mean(axis=(1, 2))  # squeeze: global average pooling
    s = 1 / (1 + np.exp(-(np.maximum(z @ w1 + b1, 0) @ w2 + b2)))  # excitation
    np.testing.assert_allclose(numpy(se.channel_weights(x)), s, atol=1e-6)
    np.testing.assert_allclose(y, x * s[:, None, None, :], atol=1e-6)  # scale
    assert (s > 0).all() and (s < 1).all() and not np.allclose(s[0], s[1])


def test_se_masked_squeeze_ignores_padded_steps_and_passes_the_mask_on():
    se = SqueezeExcitation(2)
    x = X3.copy()
    x[~MASK] = 100.0  # garbage in the padding must not matter
    y = numpy(se(x, mask=MASK))
    for i, length in enumerate(MASK.sum(axis=1)):
        np.testing.assert_allclose(y[i, :length], numpy(se(x[i : i + 1, :length]))[0], atol=1e-5)
    assert se.compute_mask(x, MASK) is MASK


def test_se_config_round_trip():
    assert_config_round_trip(SqueezeExcitation(4, activation="gelu", gate="hard_sigmoid"), X3)


def test_se_one_training_step_lowers_the_loss():
    assert_one_step_lowers_loss(SqueezeExcitation(2), X3)


def test_se_mixed_precision():
    assert_mixed_precision(lambda dtype: SqueezeExcitation(2, dtype=dtype), X3, atol=0.05)


SE_BAD_ARGUMENTS = [
    ({"ratio": 0}, "`ratio` must be a positive integer, got ratio=0"),
    ({"ratio": 2.5}, "ratio=2.5"),
    ({"ratio": True}, "ratio=True"),
    ({"activation": "nope"}, "`activation` must name a Keras activation, got activation='nope'"),
    ({"gate": "sigmoidd"}, "gate='sigmoidd'"),
]


def test_se_rejects_bad_arguments_naming_argument_and_value():
    for kwargs, match in SE_BAD_ARGUMENTS:
        with pytest.raises(ValueError, match=match):
            SqueezeExcitation(**kwargs)


def test_se_rejects_a_ratio_that_leaves_no_hidden_unit_naming_both_numbers():
    with pytest.raises(ValueError, match=r"`ratio`=16 leaves no hidden unit for 8 channels"):
        SqueezeExcitation(16)(X3)
    with pytest.raises(ValueError, match=r"input_shape=\(3, 8\)"):
        SqueezeExcitation(2)(X3[:, 0])


# --------------------------------------------------------------------- Conv1DStack


def stack_params(c_in: int, stack: Conv1DStack) -> int:
    """Parameter count of a Conv1DStack, from its formula."""
    total = 0
    for f, k, s in zip(stack.filters, stack.kernel_size, stack.strides):
        total += k * c_in * f + (4 * f if stack.batch_norm else f)  # conv (+bias or BN)
        if stack.se_ratio:
            total += se_params(f, stack.se_ratio)
        if stack.residual and (c_in != f or s > 1):
            total += c_in * f + f  # 1x1 shortcut projection
        c_in = f
    return total


STACKS = [  # (input steps, arguments): odd and even lengths meet strides and pooling
    (23, {"filters": (4, 6), "kernel_size": 3}),
    (30, {"filters": (4, 6, 6), "kernel_size": (5, 3, 2), "padding": "valid", "pool_size": 2}),
    (23, {"filters": (4, 4), "strides": (2, 1), "padding": "causal", "residual": True,
          "se_ratio": 2}),
    (30, {"filters": (8, 8, 8, 8), "kernel_size": 2, "dilation_rate": (1, 2, 4, 8),
          "padding": "causal"}),
    (23, {"filters": (4, 8), "strides": 2, "pool_size": (None, 3), "batch_norm": True,
          "residual": True}),
    (30, {"filters": 5, "kernel_size": 4, "strides": 3, "padding": "valid", "dropout": 0.3}),
]


@pytest.mark.parametrize("steps, kwargs", STACKS)
def test_conv1d_stack_shapes_and_parameter_count(steps, kwargs):
    stack = Conv1DStack(**kwargs)
    x = RNG.normal(size=(2, steps, 3)).astype("float32")
    assert tuple(stack(x).shape) == stack.compute_output_shape(x.shape)
    assert stack.count_params() == stack_params(3, stack)
    symbolic = Conv1DStack(**kwargs)(keras.Input((None, 3)))
    assert tuple(symbolic.shape) == (None, None, stack.filters[-1])
    assert Conv1DStack(**kwargs).compute_output_shape((None, None, 3)) == tuple(symbolic.shape)


def impulse_response_span(stack: Conv1DStack, steps: int = 96) -> tuple[int, int, int]:
    """Brute force: add an impulse at every input step (one batch row each) and see which of them
    move the middle output step. Weights are positive and the input is positive, so every path
    is active (ReLU on, max pooling strictly increases). Returns (first, last, output step t)."""
    stack.build((None, steps, 2))
    for w in stack.weights:
        if w.path.endswith("kernel"):
            w.assign(np.full(w.shape, 1.0 / np.prod(w.shape[:-1]), dtype="float32"))
    base = np.ones((1, steps, 2), dtype="float32")
    impulses = base + np.eye(steps, dtype="float32")[:, :, None]
    t = stack.compute_output_shape(base.shape)[1] // 2
    moved = np.abs(numpy(stack(impulses, training=False))[:, t] - numpy(stack(base))[0, t])
    hit = np.flatnonzero(moved.max(axis=-1) > 1e-6)
    return int(hit.min()), int(hit.max()), t


@pytest.mark.parametrize("kwargs, expected", [
    ({"filters": (2,), "kernel_size": 3, "dilation_rate": 2}, 5),
    ({"filters": (2, 2, 2), "kernel_size": 3}, 7),
    ({"filters": (2, 2, 2), "kernel_size": 3, "dilation_rate": (1, 2, 4)}, 15),
    ({"filters": (2, 2, 2, 2), "kernel_size": 2, "dilation_rate": (1, 2, 4, 8),
      "padding": "causal"}, 16),
    ({"filters": (2, 2), "kernel_size": (3, 5), "strides": (2, 1), "padding": "valid"}, 11),
    ({"filters": (2, 2, 2), "kernel_size": 3, "pool_size": 2, "padding": "valid"}, 22),
    ({"filters": (2, 3), "kernel_size": 3, "strides": 2, "pool_size": (3, None), "residual": True,
      "batch_norm": True}, 19),
])
def test_conv1d_stack_receptive_field_matches_impulse_response(kwargs, expected):
    stack = Conv1DStack(**kwargs)
    first, last, _ = impulse_response_span(stack)
    assert stack.receptive_field() == last - first + 1 == expected


def test_causal_stack_never_sees_the_future_even_with_strides_and_residuals():
    stack = Conv1DStack((2, 2, 2), kernel_size=3, strides=(2, 1, 1), dilation_rate=(1, 2, 1),
                        padding="causal", residual=True)
    first, last, t = impulse_response_span(stack)
    assert last == 2 * t  # output step t of a stride-2 stack sits at input step 2t: nothing later
    assert last - first + 1 == stack.receptive_field() == 1 + 2 + 2 * 4 + 2 * 2


def test_squeeze_excitation_makes_every_input_step_matter():
    """The SE gate averages the whole sequence, so it reaches past receptive_field()."""
    first, last, _ = impulse_response_span(Conv1DStack((4,), kernel_size=3, se_ratio=2))
    assert (first, last) == (0, 95)


def test_conv1d_stack_config_round_trip():
    assert_config_round_trip(Conv1DStack((4, 6), kernel_size=(3, 5), strides=(1, 2),
                                         pool_size=(2, None), batch_norm=True, se_ratio=2,
                                         residual=True, activation="tanh"), X3)


def test_conv1d_stack_one_training_step_lowers_the_loss():
    stack = Conv1DStack((4, 6), batch_norm=True, se_ratio=2, residual=True, pool_size=2)
    assert_one_step_lowers_loss(stack, X3)


def test_conv1d_stack_mixed_precision():
    assert_mixed_precision(lambda dtype: Conv1DStack((4, 6), se_ratio=2, residual=True,
                                                     pool_size=2, dtype=dtype), X3, atol=0.05)


STACK_BAD_ARGUMENTS = [
    ({"filters": ()}, ValueError, r"`filters` must be .*got filters=\(\)"),
    ({"filters": (8, 0)}, ValueError, r"filters=\(8, 0\)"),
    ({"kernel_size": (3,)}, ValueError,
     r"`kernel_size` must be .* sequence of 2 .*kernel_size=\(3,\)"),
    ({"kernel_size": 0}, ValueError, "kernel_size=0"),
    ({"strides": "2"}, ValueError, "strides='2'"),
    ({"pool_size": 0}, ValueError, "pool_size=0"),
    ({"strides": 2, "dilation_rate": (1, 2)}, ValueError, "`strides`=2 with `dilation_rate`=2"),
    ({"padding": "full"}, ValueError, "padding='full'"),
    ({"dropout": 1.0}, ValueError, "dropout=1.0"),
    ({"se_ratio": 0}, ValueError, "se_ratio=0"),
    ({"filters": (4, 8), "se_ratio": 5}, ValueError,
     "`se_ratio`=5 leaves no hidden unit .* 4 filters"),
    ({"residual": "yes"}, TypeError, "residual='yes'"),
    ({"batch_norm": 1}, TypeError, "batch_norm=1"),
    ({"residual": True, "padding": "valid"}, ValueError, "`residual=True` .*padding='valid'"),
    ({"activation": "nope"}, ValueError, "activation='nope'"),
]


def test_conv1d_stack_rejects_bad_arguments_naming_argument_and_value():
    for kwargs, error, match in STACK_BAD_ARGUMENTS:
        with pytest.raises(error, match=match):
            Conv1DStack(**kwargs)


def test_conv1d_stack_rejects_inputs_that_are_not_sequences():
    with pytest.raises(ValueError, match=r"input_shape=\(3, 7, 8, 1\)"):
        Conv1DStack()(X3[..., None])


# --------------------------------------------------------------------- SummingBidirectional


def twin_layers(rnn: type, return_sequences: bool):
    """Our layer and Keras's Bidirectional(sum), with identical weights."""
    ours = SummingBidirectional(rnn(5, return_sequences=return_sequences))
    keras_bi = layers.Bidirectional(rnn(5, return_sequences=return_sequences), merge_mode="sum")
    ours.build(X3.shape)
    keras_bi.build(X3.shape)
    keras_bi.set_weights(ours.get_weights())
    return ours, keras_bi


@pytest.mark.parametrize("rnn, return_sequences",
                         [(layers.LSTM, True), (layers.LSTM, False), (layers.GRU, True)])
def test_summing_bidirectional_equals_keras_bidirectional_sum(rnn, return_sequences):
    ours, keras_bi = twin_layers(rnn, return_sequences)
    for mask in (None, MASK):
        got, want = numpy(ours(X3, mask=mask)), numpy(keras_bi(X3, mask=mask))
        assert got.shape == want.shape == ((3, 7, 5) if return_sequences else (3, 5))
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"mask={mask is not None}")


def test_summing_the_go_backwards_output_without_flipping_it_is_wrong():
    """The source notes' SummingBidirectionalLSTM adds the go_backwards sequence as it comes out."""
    ours, keras_bi = twin_layers(layers.LSTM, return_sequences=True)
    want = numpy(keras_bi(X3))
    notes = numpy(ours.forward_layer(X3) + ours.backward_layer(X3))  # no flip back in time
    assert np.abs(notes - want).max() > 1e-2
    # Only the last step agrees with the non-sequence merge: both use the two final states.
    last_only, _ = twin_layers(layers.LSTM, return_sequences=False)
    last_only.set_weights(ours.get_weights())
    np.testing.assert_allclose(notes[:, -1], numpy(last_only(X3)), atol=1e-5)


def test_summing_bidirectional_masks_padding():
    ours = SummingBidirectional(layers.GRU(5, return_sequences=True))
    x = X3.copy()
    x[~MASK] = 100.0
    y = numpy(ours(x, mask=MASK))
    assert (y[~MASK] == 0).all()  # padded steps output zeros
    for i, length in enumerate(MASK.sum(axis=1)):  # and do not change the real steps
        np.testing.assert_allclose(y[i, :length], numpy(ours(x[i : i + 1, :length]))[0], atol=1e-5)
    assert ours.compute_mask(x, MASK) is MASK
    assert SummingBidirectional(layers.GRU(5)).compute_mask(x, MASK) is None


def test_summing_bidirectional_parameter_count_is_two_lstms():
    ours, keras_bi = twin_layers(layers.LSTM, return_sequences=True)
    assert ours.count_params() == keras_bi.count_params() == 2 * lstm_params(8, 5) == 560


def test_summing_bidirectional_config_round_trip():
    assert_config_round_trip(SummingBidirectional(layers.LSTM(5, return_sequences=True)), X3)


def test_summing_bidirectional_one_training_step_lowers_the_loss():
    assert_one_step_lowers_loss(SummingBidirectional(layers.GRU(5)), X3)


def test_summing_bidirectional_mixed_precision():
    assert_mixed_precision(
        lambda dtype: SummingBidirectional(layers.GRU(5, return_sequences=True, dtype=dtype)),
        X3, atol=0.05)


def test_summing_bidirectional_rejects_bad_layers_naming_the_problem():
    cases = [
        ("lstm", TypeError, "`layer` must be a Keras recurrent layer, got layer='lstm'"),
        (layers.Dense(3), ValueError, "`layer` must be a recurrent layer with a `go_backwards`"),
        (layers.LSTM(3, go_backwards=True), ValueError,
         "go_backwards=False, got layer.go_backwards=True"),
        (layers.LSTM(3, return_state=True), ValueError, "layer.return_state=True"),
        (layers.GRU(3, stateful=True), ValueError, "layer.stateful=True"),
    ]
    for layer, error, match in cases:
        with pytest.raises(error, match=match):
            SummingBidirectional(layer)


# --------------------------------------------------------------------- TimeDistributed


def test_time_distributed_dense_is_dense_on_the_last_axis():
    dense, wrapped = layers.Dense(4), layers.TimeDistributed(layers.Dense(4))
    dense.build(X3.shape)
    wrapped.build(X3.shape)
    wrapped.set_weights(dense.get_weights())
    assert dense.count_params() == wrapped.count_params() == 8 * 4 + 4  # independent of steps
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(numpy(wrapped(X3)), numpy(dense(X3)), atol=1e-6)
    np.testing.assert_allclose(numpy(wrapped(X3)), X3 @ kernel + bias, atol=1e-5)
