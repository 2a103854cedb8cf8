"""kdl.models: every builder returns an uncompiled model with the promised shapes, named layers,
masking, stacking options and argument checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

import kdl
from kdl.layers import Conv1DStack, SqueezeExcitation
from kdl.models import (
    FORECASTER_KINDS,
    conv1d_classifier,
    forecaster,
    se_cnn,
    sequence_tagger,
    text_classifier,
)

RNG = np.random.default_rng(0)
TOKENS = np.array([[3, 7, 2, 9, 4, 1], [5, 8, 6, 0, 0, 0]], dtype="int32")  # row 2 is padded
WINDOWS = RNG.normal(size=(2, 12, 3)).astype("float32")


def numpy(x) -> np.ndarray:
    return ops.convert_to_numpy(x)


def lstm_params(features: int, units: int) -> int:
    return 4 * (units * (features + units) + units)


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return list(model._flatten_layers(include_self=False))


def assert_uncompiled_without_lambda(model: keras.Model) -> None:
    """Builders hand back uncompiled models that load with safe_mode=True (no Lambda layers)."""
    assert not model.compiled
    assert not any(isinstance(layer, layers.Lambda) for layer in all_layers(model)), model.name


def test_sequence_tagger_labels_every_step_of_variable_length_token_sequences():
    model = sequence_tagger(vocab_size=12, num_tags=4, units=6, embed_dim=5)
    assert_uncompiled_without_lambda(model)
    assert model.input_shape == (None, None) and model.output_shape == (None, None, 4)
    assert model.get_layer("embedding").mask_zero
    bilstm = model.get_layer("bilstm")
    assert bilstm.merge_mode == "sum" and bilstm.forward_layer.return_sequences
    assert isinstance(model.get_layer("tags"), layers.TimeDistributed)
    assert model.count_params() == 12 * 5 + 2 * lstm_params(5, 6) + 6 * 4 + 4
    probs = numpy(model(TOKENS))
    assert probs.shape == (2, 6, 4)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    # The padding is masked: the padded row's real steps equal the unpadded sequence's.
    np.testing.assert_allclose(probs[1, :3], numpy(model(TOKENS[1:, :3]))[0], atol=1e-5)


def test_sequence_tagger_on_feature_sequences_masks_a_padding_value():
    model = sequence_tagger(num_features=3, num_tags=2, units=4, mask_value=0.0)
    assert_uncompiled_without_lambda(model)
    assert model.output_shape == (None, None, 2)
    assert isinstance(model.get_layer("masking"), layers.Masking)
    x = WINDOWS[:1, :5].copy()
    padded = np.concatenate([x, np.zeros((1, 3, 3), "float32")], axis=1)
    np.testing.assert_allclose(numpy(model(padded))[0, :5], numpy(model(x))[0], atol=1e-5)


def test_sequence_tagger_trains_on_padded_batches():
    model = sequence_tagger(vocab_size=12, num_tags=3, units=4, embed_dim=4)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  run_eagerly=keras.backend.backend() == "tensorflow")
    tags = TOKENS % 3
    first = float(model.train_on_batch(TOKENS, tags, return_dict=True)["loss"])
    second = float(model.train_on_batch(TOKENS, tags, return_dict=True)["loss"])
    assert second < first


def test_sequence_tagger_rejects_bad_arguments():
    with pytest.raises(ValueError, match="exactly one of .*num_features=None, vocab_size=None"):
        sequence_tagger(num_tags=3)
    with pytest.raises(ValueError, match="num_features=4, vocab_size=10"):
        sequence_tagger(4, 10, num_tags=3)
    with pytest.raises(TypeError, match="takes from 0 to 2 positional arguments"):
        sequence_tagger(4, None, 3)  # num_tags is keyword-only
    with pytest.raises(ValueError, match="`num_tags` must be an integer >= 1, got num_tags=0"):
        sequence_tagger(vocab_size=10, num_tags=0)
    with pytest.raises(ValueError, match="vocab_size=1"):
        sequence_tagger(vocab_size=1, num_tags=2)


@pytest.mark.parametrize("kind", FORECASTER_KINDS)
def test_forecaster_maps_a_window_to_the_horizon(kind):
    model = forecaster((12, 3), horizon=4, kind=kind, units=5, filters=(4, 4), kernel_size=3)
    assert_uncompiled_without_lambda(model)
    assert model.output_shape == (None, 4)
    assert numpy(model(WINDOWS)).shape == (2, 4)
    assert model.get_layer("forecast").units == 4 and model.name == f"{kind}_forecaster"


def test_forecaster_stacks_recurrent_layers_with_dropout():
    model = forecaster((None, 3), kind="lstm", units=4, num_layers=3, dropout=0.1,
                       recurrent_dropout=0.2)
    stack = [model.get_layer(f"lstm_{i}") for i in (1, 2, 3)]
    assert [layer.return_sequences for layer in stack] == [True, True, False]
    assert all(layer.dropout == 0.1 and layer.recurrent_dropout == 0.2 for layer in stack)
    assert model.get_layer("dropout").rate == 0.1
    bi = forecaster((None, 3), kind="bilstm_sum", units=4, num_layers=2).get_layer("bilstm_2")
    assert isinstance(bi, layers.Bidirectional) and bi.merge_mode == "sum"
    conv_gru = forecaster((None, 3), kind="conv1d_gru", units=4, filters=(4, 8))
    assert isinstance(conv_gru.get_layer("conv_stack"), Conv1DStack)
    assert conv_gru.get_layer("gru_1").input.shape == (None, None, 8)


def test_forecaster_rejects_bad_arguments():
    cases = [
        ({"kind": "transformer"}, "kind='transformer'"),
        ({"input_shape": (12,)}, r"`input_shape` must be a tuple of 2 .*input_shape=\(12,\)"),
        ({"input_shape": (None, 3), "kind": "dense"}, "kind='dense' .*fixed number of steps"),
        ({"horizon": 0}, "horizon=0"),
        ({"num_layers": 0}, "num_layers=0"),
        ({"dropout": 1.5}, r"`dropout` must be a float in \[0, 1\), got dropout=1.5"),
        ({"recurrent_dropout": -0.1}, "recurrent_dropout=-0.1"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            forecaster(**{"input_shape": (12, 3), **kwargs})


def test_text_classifier_softmax_over_classes_ignoring_padding():
    model = text_classifier(vocab_size=12, num_classes=2, embed_dim=4, units=3, dropout=0.2)
    assert_uncompiled_without_lambda(model)
    assert model.output_shape == (None, 2)
    assert model.get_layer("embedding").mask_zero
    assert model.get_layer("bilstm").merge_mode == "sum"
    assert model.count_params() == 12 * 4 + 2 * lstm_params(4, 3) + 3 * 2 + 2
    probs = numpy(model(TOKENS))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs[1], numpy(model(TOKENS[1:, :3]))[0], atol=1e-5)
    with pytest.raises(ValueError, match="num_classes=1"):
        text_classifier(10, 1)
    with pytest.raises(ValueError, match="vocab_size=0"):
        text_classifier(0, 3)


def test_conv1d_classifier_with_and_without_squeeze_excitation():
    plain = conv1d_classifier((12, 3), 3, filters=(4, 8))
    with_se = conv1d_classifier((None, 3), 3, filters=(4, 8), se_ratio=2, batch_norm=True,
                                residual=True, dropout=0.1)
    assert_uncompiled_without_lambda(with_se)
    assert plain.output_shape == with_se.output_shape == (None, 3)
    assert numpy(with_se(WINDOWS)).shape == (2, 3)
    stack = with_se.get_layer("conv_stack")
    assert stack.se_ratio == 2 and stack.batch_norm and stack.residual
    assert any(isinstance(layer, SqueezeExcitation) for layer in all_layers(with_se))
    assert not any(isinstance(layer, SqueezeExcitation) for layer in all_layers(plain))
    with pytest.raises(ValueError, match=r"input_shape=\(12, 0\)"):
        conv1d_classifier((12, 0), 3)
    with pytest.raises(ValueError, match="num_classes=1"):
        conv1d_classifier((12, 3), 1)


def test_se_cnn_differs_from_its_plain_twin_by_the_se_parameters_only():
    with_se, plain = se_cnn(), se_cnn(se_ratio=None)
    assert_uncompiled_without_lambda(with_se)
    assert with_se.output_shape == plain.output_shape == (None, 10)
    assert (with_se.name, plain.name) == ("se_cnn", "plain_cnn")
    se_formula = sum(2 * c * (c // 4) + c // 4 + c for c in (16, 32))
    assert with_se.count_params() - plain.count_params() == se_formula
    assert [isinstance(with_se.get_layer(f"se_{i}"), SqueezeExcitation) for i in (1, 2)] == [1, 1]
    assert not any(isinstance(layer, SqueezeExcitation) for layer in plain.layers)
    images = RNG.normal(size=(2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(numpy(with_se(images)).sum(axis=-1), 1.0, atol=1e-5)


def test_se_cnn_rejects_bad_arguments():
    cases = [
        ({"se_ratio": 32}, "`se_ratio`=32 leaves no hidden unit for a block of 16 filters"),
        ({"se_ratio": 0}, "se_ratio=0"),
        ({"filters": ()}, r"filters=\(\)"),
        ({"input_shape": (28, 28)}, r"input_shape=\(28, 28\)"),
        ({"num_classes": 1}, "num_classes=1"),
        ({"dropout": 1}, "dropout=1"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            se_cnn(**kwargs)


def _sgd_fit(model, x, y, epochs=2):
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0)


@pytest.mark.parametrize("build", [
    lambda name: forecaster((8, 2), kind="gru", units=4, name=name),
    lambda name: conv1d_classifier((8, 2), num_classes=3, filters=(4,), name=name),
])
def test_two_models_from_one_builder_train_inside_one_model_exactly_as_alone(build):
    # The builders' layers have fixed names; their variables still get paths of their own, or on
    # torch one copy of each pair is not registered and trains on accumulated gradients.
    x = RNG.normal(size=(64, 8, 2)).astype("float32")

    def fresh(name):
        kdl.set_random_seed(0)  # the same initial weights for every copy
        return build(name)

    alone, first, second = fresh("alone"), fresh("first"), fresh("second")
    y = numpy(alone(x)) + RNG.normal(size=alone.output_shape[1:]).astype("float32")
    assert len({v.path for v in first.weights + second.weights}) == 2 * len(first.weights)
    window = keras.Input((8, 2))
    pair = keras.Model(window, [first(window), second(window)])
    pair.compile(optimizer=keras.optimizers.SGD(0.1), loss=["mse", "mse"])
    pair.fit(x, [y, y], epochs=2, batch_size=16, shuffle=False, verbose=0)
    _sgd_fit(alone, x, y)
    moved = max(float(np.abs(numpy(w) - numpy(v)).max())
                for w, v in zip(alone.weights, fresh("start").weights))
    assert moved > 1e-3  # training changed the weights
    for copy in (first, second):
        for w, v in zip(copy.weights, alone.weights):
            np.testing.assert_allclose(numpy(w), numpy(v), atol=1e-5, err_msg=w.path)
