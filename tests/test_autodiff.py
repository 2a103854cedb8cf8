"""kdl.autodiff against analytic gradients and central finite differences, on this backend."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from kdl.autodiff import grad, value_and_grad

RNG = np.random.default_rng(0)


def central_difference(f_np, x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Numerical gradient of a NumPy scalar function, one coordinate at a time (float64)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        out[idx] = (f_np(x + step) - f_np(x - step)) / (2 * eps)
    return out


def to_np(t) -> np.ndarray:
    return ops.convert_to_numpy(t)


def test_scalar_argument_matches_analytic_derivative():
    # d/dx [x^3 sin x] = 3x^2 sin x + x^3 cos x
    f = lambda x: x**3 * ops.sin(x)
    for x in (-2.0, 0.5, 1.7):
        expected = 3 * x**2 * np.sin(x) + x**3 * np.cos(x)
        assert to_np(grad(f)(x)) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_vector_argument_matches_analytic_and_finite_differences():
    # f(x) = log(sum(exp(x))) has gradient softmax(x).
    x = RNG.normal(size=5).astype("float32")
    g = to_np(grad(lambda v: ops.logsumexp(v))(x))
    softmax = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(g, softmax, rtol=1e-5, atol=1e-6)
    numeric = central_difference(lambda v: np.log(np.exp(v).sum()), x)
    np.testing.assert_allclose(g, numeric, rtol=1e-3, atol=1e-4)
    assert g.shape == x.shape


def test_matrix_argument_matches_analytic_and_finite_differences():
    # f(W) = ||W a - b||^2 / 2  has gradient (W a - b) a^T: the shape of W.
    W = RNG.normal(size=(3, 4)).astype("float32")
    a = RNG.normal(size=(4,)).astype("float32")
    b = RNG.normal(size=(3,)).astype("float32")
    a_t, b_t = ops.convert_to_tensor(a), ops.convert_to_tensor(b)  # constants as tensors
    f = lambda w: 0.5 * ops.sum((ops.matmul(w, a_t) - b_t) ** 2)
    g = to_np(grad(f)(W))
    np.testing.assert_allclose(g, np.outer(W @ a - b, a), rtol=1e-4, atol=1e-5)
    numeric = central_difference(lambda w: 0.5 * np.sum((w @ a - b) ** 2), W)
    np.testing.assert_allclose(g, numeric, rtol=1e-3, atol=1e-3)
    assert g.shape == (3, 4)


def test_trace_of_matrix_product_gradient_is_the_transpose():
    # d tr(AX) / dX = A^T (the matrix-calculus identity in chapter 00).
    A = RNG.normal(size=(3, 3)).astype("float32")
    X = RNG.normal(size=(3, 3)).astype("float32")
    g = to_np(grad(lambda a, x: ops.trace(ops.matmul(a, x)), argnums=1)(A, X))
    np.testing.assert_allclose(g, A.T, rtol=1e-6, atol=1e-6)


def test_several_argnums_give_a_tuple_in_order():
    f = lambda x, y, z: ops.sum(x * y) + 3.0 * z
    x = np.array([1.0, 2.0], "float32")
    y = np.array([3.0, -1.0], "float32")
    gx, gz = grad(f, argnums=(0, 2))(x, y, 5.0)
    np.testing.assert_allclose(to_np(gx), y)
    assert float(to_np(gz)) == pytest.approx(3.0)


def test_value_and_grad_returns_the_value_too():
    x = np.array([[1.0, -2.0], [0.5, 3.0]], "float32")
    value, g = value_and_grad(lambda m: ops.sum(m**2))(x)
    assert float(to_np(value)) == pytest.approx(float((x**2).sum()))
    np.testing.assert_allclose(to_np(g), 2 * x)


def test_unused_argument_has_zero_gradient_not_none():
    g = grad(lambda x, y: ops.sum(x**2), argnums=1)(np.ones(2, "float32"), np.ones(3, "float32"))
    np.testing.assert_array_equal(to_np(g), np.zeros(3))


def test_integer_input_is_differentiated_as_float():
    g = grad(lambda x: ops.sum(x**2))(np.array([1, 2, 3]))
    np.testing.assert_allclose(to_np(g), [2.0, 4.0, 6.0])


def test_gradient_through_a_keras_layer_with_respect_to_its_input():
    import keras

    layer = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    x = np.array([[1.0, 2.0, 3.0]], "float32")
    g = grad(lambda v: ops.sum(layer(v) ** 2))(x)
    np.testing.assert_allclose(to_np(g), np.full((1, 3), 12.0))  # 2 * (1+2+3) * 1


@pytest.mark.parametrize("shape", [(3,), (2, 2)])
def test_non_scalar_output_is_a_clear_error(shape):
    f = lambda x: x * 2.0
    with pytest.raises(ValueError, match=rf"scalar output.*shape \({shape[0]},"):
        grad(f)(np.ones(shape, "float32"))
    with pytest.raises(ValueError, match="scalar output"):
        value_and_grad(f)(np.ones(shape, "float32"))


@pytest.mark.parametrize("argnums", ["0", 1.5, (), (0, 0), True])
def test_bad_argnums_are_rejected_with_the_value(argnums):
    with pytest.raises((TypeError, ValueError), match="argnums"):
        grad(lambda x: ops.sum(x), argnums=argnums)


def test_argnums_out_of_range_names_the_count():
    with pytest.raises(ValueError, match=r"out of range.*1 positional"):
        grad(lambda x: ops.sum(x), argnums=1)(np.ones(2, "float32"))


def test_keras_variable_argument_is_differentiated_at_its_value():
    import keras

    v = keras.Variable([1.0, -2.0])
    np.testing.assert_allclose(to_np(grad(lambda x: ops.sum(x**3))(v)), [3.0, 12.0])
