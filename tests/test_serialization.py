"""Every kdl model saves to ``.keras`` and loads with ``safe_mode=True``: on this backend with
identical predictions, and on the two other backends within 1e-5.

The suite runs once per backend; each run saves under its own backend and loads under the other
two in subprocesses, so the three runs together cover the 3x3 matrix of save and load backends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers, ops

from kdl.layers import (Conv1DStack, SinusoidalPositionEncoding, SqueezeExcitation,
                        SummingBidirectional, TransformerEncoder)
from kdl.models import (conv1d_classifier, forecaster, se_cnn, sequence_tagger, text_classifier,
                        transformer_classifier)

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
RNG = np.random.default_rng(0)
TOKENS = np.array([[3, 7, 2, 9, 4, 1], [5, 8, 6, 0, 0, 0]], dtype="int32")  # row 2 is padded
WINDOWS = RNG.normal(size=(2, 12, 3)).astype("float32")
IMAGES = RNG.normal(size=(2, 28, 28, 1)).astype("float32")


def kdl_layers_model() -> keras.Model:
    """One model holding every kdl layer, with batch norm statistics, strides and residuals."""
    inputs = keras.Input((None, 3), name="signal")
    x = Conv1DStack((4, 6), kernel_size=(3, 5), strides=(1, 2), pool_size=(2, None),
                    batch_norm=True, se_ratio=2, residual=True, name="conv_stack")(inputs)
    x = SummingBidirectional(layers.GRU(5, return_sequences=True), name="bigru")(x)
    x = SqueezeExcitation(2, name="se")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(2, name="out")(x), name="kdl_layers")


def kdl_attention_model() -> keras.Model:
    """The Transformer blocks with non-default settings: pre-norm, gelu, a custom wavelength."""
    inputs = keras.Input((None, 3), name="signal")
    x = layers.Dense(8, name="project")(inputs)
    positions = SinusoidalPositionEncoding(max_wavelength=100.0, name="positions")(x)
    x = layers.Add(name="add_positions")([x, positions])
    x = TransformerEncoder(12, 4, dropout=0.1, activation="gelu", normalize_first=True,
                           layer_norm_epsilon=1e-6, name="encoder")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(2, name="out")(x), name="kdl_attention")


CASES: dict[str, tuple[Callable[[], keras.Model], np.ndarray]] = {
    "kdl_layers": (kdl_layers_model, WINDOWS),
    "kdl_attention": (kdl_attention_model, WINDOWS),
    "transformer_classifier": (lambda: transformer_classifier(12, 3, 6, embed_dim=8, num_heads=2,
                                                              intermediate_dim=8, num_layers=2,
                                                              dropout=0.1), TOKENS),
    "sequence_tagger": (lambda: sequence_tagger(vocab_size=12, num_tags=3, units=4,
                                                embed_dim=4), TOKENS),
    "text_classifier": (lambda: text_classifier(12, 3, embed_dim=4, units=3), TOKENS),
    "forecaster_conv1d_gru": (lambda: forecaster((12, 3), 2, "conv1d_gru", units=4,
                                                 filters=(4, 4), kernel_size=3), WINDOWS),
    "forecaster_bilstm_sum": (lambda: forecaster((12, 3), 2, "bilstm_sum", units=4,
                                                 num_layers=2, recurrent_dropout=0.1), WINDOWS),
    "conv1d_classifier": (lambda: conv1d_classifier((12, 3), 3, filters=(4, 6), se_ratio=2,
                                                    batch_norm=True, residual=True), WINDOWS),
    "se_cnn": (lambda: se_cnn(filters=(4, 8), se_ratio=2), IMAGES),
}


def randomized(model: keras.Model) -> keras.Model:
    """Overwrite every weight (batch norm statistics included) with seeded random values, so a
    load that silently re-initialised anything would show."""
    rng = np.random.default_rng(1)
    for w in model.weights:
        value = rng.normal(scale=0.3, size=w.shape)
        if "moving_variance" in w.path:
            value = np.abs(value) + 0.5
        w.assign(value.astype(w.dtype))
    return model


@pytest.mark.parametrize("name", list(CASES))
def test_model_reloads_with_safe_mode_and_predicts_identically(name, tmp_path):
    build, x = CASES[name]
    model = randomized(build())
    expected = ops.convert_to_numpy(model(x))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.count_params() == model.count_params()
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)), expected)


LOADER = """
import sys
import keras
import numpy as np
import kdl.layers  # registers the kdl layers for deserialisation

folder = sys.argv[1]
inputs = np.load(f"{folder}/inputs.npz")
outputs = {}
for name in inputs.files:
    model = keras.saving.load_model(f"{folder}/{name}.keras", safe_mode=True)
    outputs[name] = keras.ops.convert_to_numpy(model(inputs[name]))
np.savez(f"{folder}/predicted_on_{keras.backend.backend()}.npz", **outputs)
"""


def test_models_saved_here_load_on_the_other_backends(backend, tmp_path):
    # every kdl layer, a masked Bidirectional, and masked Transformer blocks
    names = ("kdl_layers", "sequence_tagger", "kdl_attention", "transformer_classifier")
    expected = {}
    for name in names:
        build, x = CASES[name]
        model = randomized(build())
        expected[name] = ops.convert_to_numpy(model(x))
        model.save(tmp_path / f"{name}.keras")
    np.savez(tmp_path / "inputs.npz", **{name: CASES[name][1] for name in names})
    others = [b for b in BACKENDS if b != backend]
    runs = {
        other: subprocess.Popen(
            [sys.executable, "-c", LOADER, str(tmp_path)], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "2"})
        for other in others
    }
    for other, run in runs.items():
        log, _ = run.communicate(timeout=300)
        assert run.returncode == 0, f"loading on {other} failed:\n{log[-3000:]}"
        predicted = np.load(tmp_path / f"predicted_on_{other}.npz")
        for name in names:
            diff = float(np.abs(predicted[name] - expected[name]).max())
            print(f"saved on {backend}, loaded on {other}: {name} max |diff| = {diff:.2e}")
            assert diff < 1e-5, f"{name} saved on {backend}, loaded on {other}: max |diff| {diff}"
