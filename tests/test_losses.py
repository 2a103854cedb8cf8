"""kdl.losses against plain NumPy loops (random batches, several seeds and shapes, anchors with and
without positives), gradients against central finite differences, the degenerate batches that
produce NaN in naive implementations, serialisation, training inside model.fit, and validation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from kdl import autodiff
from kdl.losses import InfoNCE, TripletHardLoss


def numpy(x) -> np.ndarray:
    return ops.convert_to_numpy(x)


# --------------------------------------------------------------------- NumPy loop references


def info_nce_reference(ids, z, temperature) -> np.ndarray:
    """Per-anchor InfoNCE by explicit loops, float64; NaN marks anchors without a positive."""
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    unit = []
    for row in z:
        norm = np.sqrt(np.sum(row**2))
        unit.append(row / norm if norm > 0 else row)
    out = np.full(n, np.nan)
    for i in range(n):
        logits = [float(unit[i] @ unit[a]) / temperature for a in range(n)]
        denominator = sum(np.exp(logits[a]) for a in range(n) if a != i)
        positives = [p for p in range(n) if p != i and ids[p] == ids[i]]
        if positives:
            out[i] = -np.mean([np.log(np.exp(logits[p]) / denominator) for p in positives])
    return out


def triplet_hard_reference(labels, x, margin) -> np.ndarray:
    """Per-anchor batch-hard triplet loss by explicit loops, float64; NaN marks anchors that
    lack a positive or a negative."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = np.full(n, np.nan)
    for i in range(n):
        d_pos = [np.linalg.norm(x[i] - x[j]) for j in range(n) if j != i and labels[j] == labels[i]]
        d_neg = [np.linalg.norm(x[i] - x[j]) for j in range(n) if labels[j] != labels[i]]
        if d_pos and d_neg:
            out[i] = max(max(d_pos) - min(d_neg) + margin, 0.0)
    return out


def batch(seed: int, n: int, dim: int, n_ids: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    z = (scale * rng.normal(size=(n, dim))).astype("float32")
    ids = rng.integers(0, n_ids, size=n)
    return ids, z


# Shapes and id counts: few ids (every anchor has positives), many ids (several anchors lack one).
CASES = [(seed, n, dim, n_ids) for seed in (0, 1, 2) for n, dim, n_ids in
         [(4, 2, 2), (9, 5, 3), (16, 8, 4), (12, 3, 10)]]


def test_cases_cover_anchors_with_and_without_positives():
    lonely = [np.any(np.bincount(batch(*c)[0]) == 1) for c in CASES]
    assert any(lonely) and not all(lonely)


# --------------------------------------------------------------------- InfoNCE


@pytest.mark.parametrize("seed, n, dim, n_ids", CASES)
@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_info_nce_matches_loop_reference(seed, n, dim, n_ids, temperature):
    ids, z = batch(seed, n, dim, n_ids)
    expected = info_nce_reference(ids, z, temperature)
    per_anchor = numpy(InfoNCE(temperature, reduction="none")(ids, z))
    np.testing.assert_allclose(per_anchor, np.nan_to_num(expected, nan=0.0), rtol=1e-5, atol=1e-5)
    mean = float(InfoNCE(temperature)(ids, z))
    target = np.nanmean(expected) if np.any(np.isfinite(expected)) else 0.0
    np.testing.assert_allclose(mean, target, rtol=1e-5, atol=1e-5)
    total = float(InfoNCE(temperature, reduction="sum")(ids, z))
    np.testing.assert_allclose(total, np.nansum(expected), rtol=1e-5, atol=1e-4)


def test_info_nce_with_two_views_is_cross_entropy_of_picking_the_partner():
    # NT-Xent: rows 2k and 2k+1 are views of one sample; each row's loss is the softmax
    # cross-entropy of finding its partner among the other 2N-1 rows.
    ids, z = batch(3, 10, 4, 1)
    ids = np.repeat(np.arange(5), 2)
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    logits = unit @ unit.T / 0.2
    np.fill_diagonal(logits, -np.inf)
    partner = np.arange(10) ^ 1
    log_softmax = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    expected = -np.mean(log_softmax[np.arange(10), partner])
    np.testing.assert_allclose(float(InfoNCE(0.2)(ids, z)), expected, rtol=1e-5)


def test_info_nce_ignores_scale_of_embeddings_and_accepts_column_ids():
    ids, z = batch(4, 8, 3, 3)
    a = float(InfoNCE(0.5)(ids, z))
    b = float(InfoNCE(0.5)(ids.reshape(-1, 1), 7.0 * z))
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_info_nce_without_any_positive_is_zero():
    ids, z = batch(5, 6, 3, 1)
    assert float(InfoNCE()(np.arange(6), z)) == 0.0


# --------------------------------------------------------------------- TripletHardLoss


@pytest.mark.parametrize("seed, n, dim, n_ids", CASES)
@pytest.mark.parametrize("margin", [0.0, 1.0])
def test_triplet_hard_matches_loop_reference(seed, n, dim, n_ids, margin):
    labels, x = batch(seed, n, dim, n_ids)
    expected = triplet_hard_reference(labels, x, margin)
    per_anchor = numpy(TripletHardLoss(margin, reduction="none")(labels, x))
    np.testing.assert_allclose(per_anchor, np.nan_to_num(expected, nan=0.0), rtol=1e-5, atol=1e-5)
    mean = float(TripletHardLoss(margin)(labels, x))
    target = np.nanmean(expected) if np.any(np.isfinite(expected)) else 0.0
    np.testing.assert_allclose(mean, target, rtol=1e-5, atol=1e-5)


def test_triplet_hard_with_one_label_or_no_pairs_is_zero():
    _, x = batch(6, 5, 3, 1)
    assert float(TripletHardLoss()(np.zeros(5), x)) == 0.0  # no negatives
    assert float(TripletHardLoss()(np.arange(5), x)) == 0.0  # no positives


# --------------------------------------------------------------------- gradients


def central_differences(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    x = x.astype(np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)) / (2 * h)
    return g


@pytest.mark.parametrize("seed, n, dim, n_ids", [(0, 6, 3, 2), (1, 9, 4, 3), (2, 8, 2, 6)])
def test_info_nce_gradient_matches_finite_differences(seed, n, dim, n_ids):
    ids, z = batch(seed, n, dim, n_ids)
    loss = InfoNCE(0.5)
    analytic = numpy(autodiff.grad(lambda e: loss(ids, e))(z))
    numeric = central_differences(lambda e: np.nanmean(info_nce_reference(ids, e, 0.5)), z)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("seed, n, dim, n_ids", [(0, 6, 3, 2), (1, 9, 4, 3), (2, 8, 2, 4)])
def test_triplet_hard_gradient_matches_finite_differences(seed, n, dim, n_ids):
    _, x = batch(seed, n, dim, n_ids)
    labels = np.arange(n) % n_ids  # every anchor has a positive and a negative
    margin = 2.0  # large enough that most anchors are active, so gradients are non-trivial
    loss = TripletHardLoss(margin)
    analytic = numpy(autodiff.grad(lambda e: loss(labels, e))(x))
    numeric = central_differences(
        lambda e: np.nanmean(triplet_hard_reference(labels, e, margin)), x)
    assert np.abs(numeric).max() > 0.1
    np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------- degenerate batches

DEGENERATE = {
    "identical rows": np.tile(np.array([[0.3, -1.2, 0.5]], "float32"), (6, 1)),
    "zero rows": np.zeros((6, 3), "float32"),
    "one zero row": np.vstack([np.zeros((1, 3)), batch(7, 5, 3, 2)[1]]).astype("float32"),
    "duplicated pairs": np.repeat(batch(8, 3, 3, 1)[1], 2, axis=0),
}
DEGENERATE_IDS = np.array([0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("loss", [InfoNCE(0.1), TripletHardLoss(1.0)], ids=["InfoNCE", "Triplet"])
@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_batches_give_finite_values_and_gradients(loss, name):
    x = DEGENERATE[name]
    for ids in (DEGENERATE_IDS, np.array([0, 1, 0, 1, 0, 1])):
        value, gradient = autodiff.value_and_grad(lambda e: loss(ids, e))(x)
        assert np.isfinite(float(value)), (name, ids)
        assert np.all(np.isfinite(numpy(gradient))), (name, ids, numpy(gradient))


def test_identical_embeddings_give_the_expected_constant_losses():
    x, ids = DEGENERATE["identical rows"], DEGENERATE_IDS
    # all cosines 1: each anchor picks its one positive among 5 equal logits
    np.testing.assert_allclose(float(InfoNCE(0.1)(ids, x)), np.log(5.0), rtol=1e-5)
    # all distances 0: every anchor sits exactly at the margin
    np.testing.assert_allclose(float(TripletHardLoss(0.7)(ids, x)), 0.7, rtol=1e-6)


# --------------------------------------------------------------------- serialisation and training


@pytest.mark.parametrize("loss", [InfoNCE(0.25, reduction="sum", name="nce"),
                                  TripletHardLoss(0.5, name="tri")], ids=["InfoNCE", "Triplet"])
def test_config_round_trips_through_keras_serialisation(loss):
    clone = type(loss).from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()


def embedding_model(dim_in: int = 4) -> keras.Model:
    inputs = keras.Input((dim_in,))
    h = layers.Dense(16, activation="relu")(inputs)
    return keras.Model(inputs, layers.Dense(8)(h))


def clustered_data(n: int = 96, dim: int = 4, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.normal(size=(classes, dim))
    y = np.tile(np.arange(classes), n // classes)
    x = (centres[y] + rng.normal(size=(n, dim))).astype("float32")
    return x, y


@pytest.mark.parametrize("loss", [InfoNCE(0.2), TripletHardLoss(1.0)], ids=["InfoNCE", "Triplet"])
def test_model_compiled_with_the_loss_trains_and_saves(loss, tmp_path):
    x, y = clustered_data()
    model = embedding_model()
    model.compile(keras.optimizers.Adam(0.01), loss=loss)
    history = model.fit(x, y, batch_size=32, epochs=8, shuffle=False, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0] - 0.25, history  # InfoNCE's floor here is log(7) ~ 1.95
    path = tmp_path / "embedder.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.loss) is type(loss) and loaded.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(numpy(loaded.predict(x, verbose=0)),
                               numpy(model.predict(x, verbose=0)), atol=1e-6)
    np.testing.assert_allclose(loaded.evaluate(x, y, batch_size=32, verbose=0),
                               model.evaluate(x, y, batch_size=32, verbose=0), rtol=1e-5)


# --------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf"), True, "0.1", None])
def test_info_nce_rejects_bad_temperature(bad):
    with pytest.raises(ValueError, match=r"`temperature` must be a positive finite number, got "
                                         r"temperature="):
        InfoNCE(temperature=bad)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), False, "1"])
def test_triplet_rejects_bad_margin(bad):
    with pytest.raises(ValueError, match=r"`margin` must be a non-negative finite number, got "
                                         r"margin="):
        TripletHardLoss(margin=bad)


@pytest.mark.parametrize("loss", [InfoNCE(), TripletHardLoss()], ids=["InfoNCE", "Triplet"])
def test_embeddings_of_wrong_rank_are_rejected(loss):
    with pytest.raises(ValueError, match=r"y_pred.*\(batch, dim\), got shape \(2, 3, 4\)"):
        loss(np.zeros(2), np.ones((2, 3, 4), "float32"))


def test_reduction_is_validated_by_keras():
    with pytest.raises(ValueError, match="reduction"):
        InfoNCE(reduction="average")
