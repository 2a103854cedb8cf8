"""kdl: the package of the Keras 3 multi-backend deep-learning course kit.

Chapters of the textbook start with ``kdl.setup(seed=...)``; students import the layers, models
and data utilities the chapters teach (``kdl.layers``, ``kdl.models``, ``kdl.data``, ...).
"""

from __future__ import annotations

import sys
from importlib import metadata

import keras

from kdl import autodiff

__version__ = "0.1.0"
__all__ = ["__version__", "autodiff", "backend_version", "default_device", "setup"]

_BACKEND_MODULE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}


def backend_version() -> str:
    """Return the version string of the library behind the current Keras backend."""
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


def setup(seed: int = 0, *, quiet: bool = False) -> None:
    """Seed every random generator, set notebook plotting defaults, and report the environment.

    Seeds Python's ``random``, NumPy and the backend through ``keras.utils.set_random_seed``.
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
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got seed={seed!r}")
    keras.utils.set_random_seed(seed)
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
