"""kdl: the package of the Keras 3 multi-backend deep-learning course kit.

Chapters of the textbook start with ``kdl.setup(seed=...)``; students import the layers, models
and data utilities the chapters teach (``kdl.layers``, ``kdl.models``, ``kdl.data``, ...).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from types import ModuleType

# keras (and with it the backend: TensorFlow prints its start-up lines on import) is imported by
# the functions that use it, not by `import kdl`: `python -m kdl run` executes chapters in
# kernels and never needs it in its own process.

__version__ = "0.1.0"
__all__ = ["__version__", "autodiff", "backend_version", "default_device", "set_random_seed", "setup"]

_BACKEND_MODULE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}


def _import_keras() -> ModuleType:
    """Import Keras; when the library of its backend is not installed, raise an error that says
    which backend Keras chose, from where, and how to choose the one that is installed."""
    try:
        import keras
    except ModuleNotFoundError as error:
        if error.name not in _BACKEND_MODULE.values():
            raise
        chosen = os.environ.get("KERAS_BACKEND")
        why = (f"KERAS_BACKEND={chosen}" if chosen else
               "KERAS_BACKEND is not set, so Keras took the backend from ~/.keras/keras.json or its "
               "default, tensorflow")
        raise ModuleNotFoundError(
            f"kdl: Keras's backend needs {error.name!r}, which is not installed ({why}). Set "
            "KERAS_BACKEND to the backend you installed, e.g. `export KERAS_BACKEND=jax` after "
            f"`pip install \"kdl[jax]\"`, or install {error.name}.", name=error.name) from error
    return keras


def backend_version() -> str:
    """Return the version string of the library behind the current Keras backend."""
    import keras

    name = _BACKEND_MODULE.get(keras.backend.backend(), keras.backend.backend())
    module = sys.modules.get(name)  # Keras has already imported its backend.
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "unknown"
    return str(version)


def default_device() -> str:
    """Return the device on which Keras places a new tensor, e.g. ``"cpu"`` or ``"cuda:0"``.

    Read from a freshly created tensor, so no backend is imported here.

    Example:
    >>> default_device() in {"cpu", "cpu:0"} or default_device().startswith(("cuda", "gpu"))
    True
    """
    import keras

    tensor = keras.ops.zeros(())
    device = getattr(tensor, "device", None)
    if callable(device):  # older jax: Array.device() is a method
        device = device()
    if device is None and hasattr(tensor, "devices"):
        device = next(iter(tensor.devices()))
    text = str(device).lower()
    if "/device:" in text:  # TensorFlow: "/job:localhost/replica:0/task:0/device:CPU:0"
        text = text.rsplit("/device:", 1)[1]
    for prefix in ("tfrt_cpu_", "cpudevice(id=", "cudadevice(id="):  # jax reprs
        if text.startswith(prefix):
            kind = "cpu" if "cpu" in prefix else "cuda"
            text = f"{kind}:{text[len(prefix):].rstrip(')')}"
    return text


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and the active backend: ``keras.utils.set_random_seed``
    without importing TensorFlow on JAX and PyTorch.

    Keras's function (keras/src/utils/rng_utils.py) records the seed in Keras's global state,
    drops the global ``SeedGenerator`` (``keras.random`` calls without a seed recreate it from the
    recorded seed), seeds ``random`` and NumPy, seeds TensorFlow whenever it is installed (to seed
    ``tf.data``), and seeds torch on the torch backend. This function does the same, except that it
    seeds TensorFlow only on its own backend: the numbers that follow are the ones Keras's function
    gives, and a JAX or PyTorch process never pays for importing TensorFlow (about 2 s).

    Args:
        seed: non-negative integer seed.

    Example:
    >>> import keras
    >>> set_random_seed(3); a = keras.ops.convert_to_numpy(keras.random.normal((2,)))
    >>> set_random_seed(3); b = keras.ops.convert_to_numpy(keras.random.normal((2,)))
    >>> bool((a == b).all())
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got seed={seed!r}")
    keras = _import_keras()

    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def setup(seed: int = 0, *, quiet: bool = False) -> None:
    """Seed every random generator, set notebook plotting defaults, and report the environment.

    Seeds Python's ``random``, NumPy and the active backend with :func:`set_random_seed` (the
    numbers of ``keras.utils.set_random_seed``, without importing TensorFlow on JAX and PyTorch).
    The backend's random *streams* still differ: the same seed gives different numbers on
    TensorFlow, JAX and PyTorch, so chapters compare results with tolerances, never digits.

    Args:
        seed: non-negative integer seed.
        quiet: if True, do not print the summary line.

    Prints one line (kdl, Keras, backend and its version, device, seed) and returns nothing, so
    that a notebook's setup cell shows the line once.

    Example:
    >>> setup(seed=1)  # doctest: +ELLIPSIS
    kdl ... | Keras ... | backend ... | device ... | seed 1
    """
    keras = _import_keras()

    set_random_seed(seed)
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )
    if not quiet:
        print(f"kdl {__version__} | Keras {keras.__version__} | backend {keras.backend.backend()} "
              f"{backend_version()} | device {default_device()} | seed {seed}")


def __getattr__(name: str):
    """``kdl.autodiff`` without importing it first, as when ``import kdl`` imported it."""
    if name == "autodiff":
        import importlib

        return importlib.import_module("kdl.autodiff")
    raise AttributeError(f"module 'kdl' has no attribute {name!r}")
