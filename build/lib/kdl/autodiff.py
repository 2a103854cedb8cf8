"""Gradients of arbitrary Python functions of tensors, on every Keras backend.

Keras 3 has no ``keras.ops.grad``: each backend differentiates in its own way (``jax.grad``,
``tf.GradientTape``, ``torch.autograd.grad``). Chapters on backpropagation, gradient flow and
optimisers need the gradient of *any* function written with ``keras.ops``, so this module is the
one place in ``kdl`` that dispatches on the backend and imports it directly.

``grad(f)`` returns a function that computes the gradient; ``value_and_grad(f)`` one that returns
``(f(*args), gradient)``. As in JAX, ``argnums`` picks which positional arguments to differentiate
with respect to (an int gives one gradient, a tuple gives a tuple), and ``f`` must return a scalar.
Arguments may be Python numbers, NumPy arrays, backend tensors or ``keras.Variable``s. The ones
differentiated are converted to floating-point tensors (``keras.config.floatx()`` for non-float
input); other NumPy or number arguments become tensors too, so ``f`` never mixes a tensor with a
NumPy array (which PyTorch refuses to do under autograd). Results are backend tensors: use
``keras.ops.convert_to_numpy`` to get NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["grad", "value_and_grad"]

Argnums = int | Sequence[int]


def _normalise_argnums(argnums: Argnums) -> tuple[tuple[int, ...], bool]:
    """Return (tuple of indices, whether the caller asked for a single int)."""
    if isinstance(argnums, bool):
        raise TypeError(f"`argnums` must be an int or a tuple of ints, got argnums={argnums!r}")
    if isinstance(argnums, int):
        return (argnums,), True
    if isinstance(argnums, Sequence) and not isinstance(argnums, str):
        nums = tuple(argnums)
        if not nums or not all(isinstance(n, int) and not isinstance(n, bool) for n in nums):
            raise TypeError(
                f"`argnums` must be an int or a non-empty tuple of ints, got argnums={argnums!r}"
            )
        if len(set(nums)) != len(nums):
            raise ValueError(f"`argnums` must not repeat an index, got argnums={argnums!r}")
        return nums, False
    raise TypeError(f"`argnums` must be an int or a tuple of ints, got argnums={argnums!r}")


def _as_float_tensor(x: Any) -> Any:
    if isinstance(x, keras.Variable):  # differentiate with respect to its current value
        x = x.value
    tensor = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(keras.backend.standardize_dtype(tensor.dtype)):
        tensor = ops.cast(tensor, keras.config.floatx())
    return tensor


def _check_scalar(out: Any, f: Callable) -> None:
    shape = tuple(ops.shape(out))
    if len(shape) != 0:
        name = getattr(f, "__name__", repr(f))
        raise ValueError(
            f"grad needs a function with a scalar output, but {name} returned a tensor of "
            f"shape {shape}; reduce it first (for example with keras.ops.sum or keras.ops.mean)."
        )


def _resolve(args: tuple, nums: tuple[int, ...], f: Callable) -> list[Any]:
    if any(n >= len(args) or n < -len(args) for n in nums):
        raise ValueError(
            f"`argnums` {nums} is out of range for {getattr(f, '__name__', 'f')} called with "
            f"{len(args)} positional argument(s)"
        )
    positions = {n % len(args) for n in nums}  # negative argnums count from the end
    resolved = []
    for i, a in enumerate(args):
        if i in positions:
            a = _as_float_tensor(a)
        elif isinstance(a, (np.ndarray, np.generic, float, int)) and not isinstance(a, bool):
            # Constants become tensors too, so `x * y` never mixes a backend tensor with NumPy.
            a = ops.convert_to_tensor(a)
        resolved.append(a)
    return resolved


def _value_and_grads(f: Callable, args: tuple, nums: tuple[int, ...]) -> tuple[Any, tuple]:
    """Evaluate f(*args) and its gradients with respect to args[n] for n in nums."""
    args = _resolve(args, nums, f)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def scalar_f(*a):
            out = f(*a)
            _check_scalar(out, f)
            return out

        value, grads = jax.value_and_grad(scalar_f, argnums=nums)(*args)
        return value, tuple(grads)
    if backend == "tensorflow":
        import tensorflow as tf

        watched = [args[n] for n in nums]
        with tf.GradientTape() as tape:
            for t in watched:
                tape.watch(t)
            out = f(*args)
        _check_scalar(out, f)
        grads = tape.gradient(out, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return out, tuple(grads)
    if backend == "torch":
        import torch

        for n in nums:
            args[n] = args[n].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = f(*args)
            _check_scalar(out, f)
            if out.requires_grad:
                grads = torch.autograd.grad(out, [args[n] for n in nums], allow_unused=True)
            else:  # f does not depend on any differentiated argument
                grads = (None,) * len(nums)
        grads = tuple(
            torch.zeros_like(args[n]) if g is None else g for n, g in zip(nums, grads)
        )
        return out.detach(), grads
    raise NotImplementedError(
        f"kdl.autodiff supports the tensorflow, jax and torch backends, not {backend!r}"
    )


def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., tuple[Any, Any]]:
    """Return a function computing ``(f(*args), gradient of f at args)``.

    Args:
        f: a Python function of tensors, written with ``keras.ops``, returning a scalar.
        argnums: index (int) or indices (tuple of ints) of the positional arguments to
            differentiate with respect to. An int gives one gradient, a tuple a tuple of them.

    Returns:
        A function with the same arguments as ``f`` returning ``(value, gradient)``, where the
        gradient has the shape of the argument it belongs to.

    Raises:
        ValueError: when ``f`` returns a non-scalar, or ``argnums`` is out of range.

    Example:
    >>> from keras import ops
    >>> vg = value_and_grad(lambda x: ops.sum(x ** 2))
    >>> value, g = vg(ops.convert_to_tensor([1.0, 2.0]))
    >>> float(value), ops.convert_to_numpy(g).tolist()
    (5.0, [2.0, 4.0])
    """
    nums, single = _normalise_argnums(argnums)

    def wrapped(*args: Any) -> tuple[Any, Any]:
        value, grads = _value_and_grads(f, args, nums)
        return value, grads[0] if single else grads

    wrapped.__name__ = f"value_and_grad_{getattr(f, '__name__', 'f')}"
    wrapped.__doc__ = f"Value and gradient of {getattr(f, '__name__', 'f')} (argnums={argnums})."
    return wrapped


def grad(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """Return a function computing the gradient of the scalar function ``f``.

    Args:
        f: a Python function of tensors, written with ``keras.ops``, returning a scalar.
        argnums: index (int) or indices (tuple of ints) of the positional arguments to
            differentiate with respect to.

    Returns:
        A function with the same arguments as ``f`` returning the gradient (a tensor of the
        argument's shape), or a tuple of gradients when ``argnums`` is a tuple.

    Raises:
        ValueError: when ``f`` returns a non-scalar, or ``argnums`` is out of range.

    Example:
    >>> from keras import ops
    >>> df = grad(lambda x, y: x * y ** 2, argnums=(0, 1))
    >>> [float(g) for g in df(3.0, 2.0)]
    [4.0, 12.0]
    """
    nums, single = _normalise_argnums(argnums)

    def wrapped(*args: Any) -> Any:
        _, grads = _value_and_grads(f, args, nums)
        return grads[0] if single else grads

    wrapped.__name__ = f"grad_{getattr(f, '__name__', 'f')}"
    wrapped.__doc__ = f"Gradient of {getattr(f, '__name__', 'f')} (argnums={argnums})."
    return wrapped
