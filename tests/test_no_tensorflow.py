"""On the JAX and PyTorch backends kdl's data utilities work with TensorFlow not importable.

Each check runs in a fresh subprocess (it chooses its own backend, whatever backend this pass of
the suite uses) in which a meta-path finder, installed before Keras loads, makes
``import tensorflow`` (and any submodule) raise ImportError.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import importlib.abc
import importlib.machinery
import sys


class RefuseTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # Finds "tensorflow" (and submodules) first and fails to load it. Raising in find_spec itself
    # would also break probes such as torch._dynamo's importlib.util.find_spec("tensorflow"),
    # which a missing TensorFlow does not; a spec without an origin is skipped by those probes.
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is blocked: this process must work without TensorFlow",
                          name=spec.name)

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, RefuseTensorFlow())
try:
    import tensorflow  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker did not block tensorflow")

import keras
import numpy as np

import kdl
import kdl.autodiff
import kdl.data
import kdl.datasets
import kdl.text

X, y = kdl.data.sliding_windows(np.arange(30.0), 6, horizon=2)
assert X.shape == (23, 6) and y[0] == 7.0

weather = kdl.datasets.load_nyc_weather("JFK")
series = weather[["temp", "humid", "pressure"]].to_numpy()[:400]
series = (series - series.mean(axis=0)) / series.std(axis=0)
train = kdl.data.WindowDataset(series, 24, 3, step=2, max_index=300, shuffle=True, batch_size=32,
                               target_column=0, seed=0)
val = kdl.data.WindowDataset(series, 24, 3, step=2, min_index=300, batch_size=32, target_column=0)
model = keras.Sequential([keras.Input((train.window_length, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(train, validation_data=val, epochs=1, verbose=0)
assert model.predict(val, verbose=0).shape == (val.n_windows, 1)

reviews = kdl.datasets.load_fine_food_reviews()
tokenizer = kdl.text.Tokenizer(max_tokens=500).fit(reviews.text[:200])
assert tokenizer.encode(reviews.text[200:210], max_length=40).shape == (10, 40)

gradient = kdl.autodiff.grad(lambda x: keras.ops.sum(x**2))(np.array([1.0, 2.0]))
assert np.allclose(keras.ops.convert_to_numpy(gradient), [2.0, 4.0])

loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
assert not loaded, loaded
print("OK without tensorflow on", keras.backend.backend())
"""


def run_on_jax_and_torch(script: str, success: str) -> None:
    """Run `script` in a fresh process per backend (both at once); each must print `success` + backend."""
    processes = {}
    for backend in ("jax", "torch"):
        env = {**os.environ, "KERAS_BACKEND": backend}
        processes[backend] = subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for backend, process in processes.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"{backend}:\n{output[-3000:]}"
        assert f"{success} {backend}" in output, output[-3000:]


def test_data_utilities_run_with_tensorflow_blocked_on_jax_and_torch():
    run_on_jax_and_torch(SCRIPT, "OK without tensorflow on")


SETUP_SCRIPT = r"""
import random
import sys

import keras
import numpy as np

import kdl


def draws():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5)])
    weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
    dropped = keras.ops.convert_to_numpy(model(np.ones((2, 3), "float32"), training=True))
    noise = keras.ops.convert_to_numpy(keras.random.normal((5,)))
    return [random.random(), np.random.rand(3), noise, dropped, *weights]


kdl.setup(seed=7, quiet=True)
assert "tensorflow" not in sys.modules, "kdl.setup imported tensorflow"
ours = draws()
kdl.set_random_seed(7)  # the chapters reseed with this between experiments
assert "tensorflow" not in sys.modules, "kdl.set_random_seed imported tensorflow"
again = draws()
keras.utils.set_random_seed(7)  # Keras's own seeding, which imports TensorFlow
assert "tensorflow" in sys.modules, "TensorFlow must be installed for this check"
theirs = draws()
for a, b, c in zip(ours, again, theirs, strict=True):
    assert np.array_equal(a, c) and np.array_equal(b, c), (a, b, c)
print("OK setup without tensorflow on", keras.backend.backend())
"""


def test_setup_seeds_like_keras_without_importing_tensorflow_on_jax_and_torch():
    """kdl.setup and kdl.set_random_seed leave TensorFlow unimported on JAX and torch, yet every
    stream they seed (Python, NumPy, keras.random, layer initialisers, dropout) draws exactly what
    keras.utils.set_random_seed gives."""
    run_on_jax_and_torch(SETUP_SCRIPT, "OK setup without tensorflow on")
