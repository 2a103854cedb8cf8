"""kdl.data: sliding_windows and WindowDataset against plain-loop references, the course notes'
generator, keras.utils.timeseries_dataset_from_array, and Keras training on this backend."""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdl.data import WindowDataset, sliding_windows


def slip_windows(x, lookback=50):
    """The course notes' function, verbatim apart from the message."""
    assert len(x) > lookback, "len(x) must be > lookback"
    data, target = [], []
    for i in range(len(x) - lookback):
        data.append(x[i : i + lookback])
        target.append(x[i + lookback])
    return np.array(data), np.array(target)


def notes_generator(
    data,
    lookback,
    delay,
    min_index=0,
    max_index=None,
    shuffle=False,
    batch_size=128,
    step=6,
    target_col=None,
):
    """The course notes' Chollet-style generator, verbatim logic (bugs included); with a
    ``target_col`` the target line is Chollet's original ``data[rows[j] + delay][target_col]``."""
    if max_index is None:
        max_index = len(data) - delay - 1
    i = min_index + lookback
    while 1:
        if shuffle:
            rows = np.random.randint(min_index + lookback, max_index, size=batch_size)
        else:
            if i + batch_size >= max_index:
                i = min_index + lookback
            rows = np.arange(i, min(i + batch_size, max_index))
            i += len(rows)
        samples = np.zeros((len(rows), lookback // step, data.shape[-1]))
        targets = np.zeros((len(rows),))
        for j, row in enumerate(rows):  # noqa: B007 (verbatim)
            indices = range(rows[j] - lookback, rows[j], step)
            samples[j] = data[indices]
            targets[j] = (
                data[rows[j] + delay] if target_col is None else data[rows[j] + delay][target_col]
            )
        yield samples, targets


def reference_windows(data, lookback, delay, step, min_index, max_index, target_column):
    """Plain loop over the rows r (the row just after each window)."""
    xs, ys = [], []
    for r in range(min_index + lookback, max_index):
        xs.append(data[r - lookback : r : step])
        ys.append(data[r + delay] if target_column is None else data[r + delay, target_column])
    return np.array(xs), np.array(ys)


def series(n_rows: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Column 0 is the row number (so a window tells which row it is); the others are random."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n_rows, n_features)).astype("float32")
    data[:, 0] = np.arange(n_rows)
    return data


def epoch(ds: WindowDataset) -> tuple[np.ndarray, np.ndarray]:
    batches = [ds[i] for i in range(len(ds))]
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


# ------------------------------------------------------------------------------ sliding_windows


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 40), lookback=st.integers(1, 39))
def test_sliding_windows_equals_notes_slip_windows_on_1d_input(n, lookback):
    lookback = min(lookback, n - 1)
    x = np.random.default_rng(n).normal(size=n)
    X, y = sliding_windows(x, lookback)
    X_ref, y_ref = slip_windows(x, lookback)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_sliding_windows_first_and_last_pairs():
    X, y = sliding_windows(np.arange(10.0), 4)
    assert X.shape == (6, 4) and y.shape == (6,)
    assert X[0].tolist() == [0, 1, 2, 3] and y[0] == 4
    assert X[-1].tolist() == [5, 6, 7, 8] and y[-1] == 9


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(3, 30),
    n_features=st.integers(1, 3),
    lookback=st.integers(1, 10),
    horizon=st.integers(1, 5),
    step=st.integers(1, 10),
    column=st.sampled_from([None, 0, -1, [0, -1]]),
)
def test_sliding_windows_2d_target_is_horizon_rows_after_the_window(
    n, n_features, lookback, horizon, step, column
):
    step = min(step, lookback)
    if n < lookback + horizon:
        with pytest.raises(ValueError, match="too few rows"):
            sliding_windows(series(n, n_features), lookback, horizon, step)
        return
    data = series(n, n_features)
    X, y = sliding_windows(data, lookback, horizon, step, target_column=column)
    X_ref, y_ref = reference_windows(data, lookback, horizon - 1, step, 0, n - horizon + 1, column)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    last_rows = X[:, 0, 0] + lookback - 1  # the last row of each window's span
    target_rows = sliding_windows(data, lookback, horizon, step, target_column=0)[1]
    np.testing.assert_array_equal(target_rows, last_rows + horizon)
    Xd, yd = WindowDataset(data, lookback, horizon - 1, step, target_column=column).to_arrays()
    np.testing.assert_array_equal(Xd, X)
    np.testing.assert_array_equal(yd, y)


def test_sliding_windows_keeps_dtype_and_reads_dataframe_columns_by_name():
    frame = pd.DataFrame({"t": np.arange(8), "v": np.arange(8) * 10})
    X, y = sliding_windows(frame, 3, target_column="v")
    assert X.dtype == np.int64 and X.shape == (5, 3, 2)
    assert y.tolist() == [30, 40, 50, 60, 70]


def test_sliding_windows_rejects_bad_arguments_by_name():
    cases = [
        ({"lookback": 0}, "lookback=0"),
        ({"lookback": 2.5}, "lookback=2.5"),
        ({"lookback": 3, "horizon": 0}, "horizon=0"),
        ({"lookback": 3, "step": 0}, "step=0"),
        ({"lookback": 3, "step": 4}, "step=4"),
        ({"lookback": 3, "target_column": 5}, "target_column`=5"),
        ({"lookback": 3, "target_column": "x"}, "target_column`='x'"),
        ({"lookback": 10}, "too few rows.*10 row"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            sliding_windows(series(10, 2), **kwargs)


def test_sliding_windows_rejects_non_numeric_and_nan_data():
    with pytest.raises(ValueError, match="`x` must be numeric.*dtype"):
        sliding_windows(np.array(list("abcdef")), 2)
    x = np.arange(10.0)
    x[7] = np.nan
    with pytest.raises(ValueError, match="`x` contains 1 NaN.*row 7.*allow_nan=True"):
        sliding_windows(x, 2)
    X, y = sliding_windows(x, 2, allow_nan=True)
    assert np.isnan(y[5])


# -------------------------------------------------------------------- WindowDataset: properties


@st.composite
def window_configs(draw):
    n = draw(st.integers(2, 36))
    lookback = draw(st.integers(1, n - 1))
    step = draw(st.integers(1, lookback))
    delay = draw(st.integers(0, n - 1 - lookback))
    last = n - delay  # the largest allowed max_index
    min_index = draw(st.integers(0, last - lookback - 1))
    max_index = draw(st.one_of(st.none(), st.integers(min_index + lookback + 1, last)))
    return {
        "n": n,
        "n_features": draw(st.integers(1, 3)),
        "lookback": lookback,
        "delay": delay,
        "step": step,
        "min_index": min_index,
        "max_index": max_index,
        "batch_size": draw(st.integers(1, 12)),
        "shuffle": draw(st.booleans()),
        "target_column": draw(st.sampled_from([None, 0, -1, [-1, 0]])),
        "seed": draw(st.integers(0, 2**31 - 2)),
    }


@settings(max_examples=500, deadline=None)
@given(window_configs())
def test_window_dataset_matches_plain_loop_and_uses_each_row_once_per_epoch(config):
    config = dict(config)
    data = series(config.pop("n"), config.pop("n_features"))
    ds = WindowDataset(data, **config)
    max_index = len(data) - ds.delay if config["max_index"] is None else config["max_index"]
    X_ref, y_ref = reference_windows(
        data, ds.lookback, ds.delay, ds.step, ds.min_index, max_index, config["target_column"]
    )
    assert len(ds) == math.ceil(len(X_ref) / ds.batch_size)
    sizes = [len(ds[i][0]) for i in range(len(ds))]
    assert all(s == ds.batch_size for s in sizes[:-1]) and 1 <= sizes[-1] <= ds.batch_size
    for _ in range(2):  # two epochs: a reshuffle must again use every row exactly once
        X, y = epoch(ds)
        rows = X[:, 0, 0].astype(int) + ds.lookback
        order = np.argsort(rows)
        np.testing.assert_array_equal(rows[order], np.arange(ds.min_index + ds.lookback, max_index))
        np.testing.assert_array_equal(X[order], X_ref)
        np.testing.assert_array_equal(y[order], y_ref)
        if not ds.shuffle:
            np.testing.assert_array_equal(X, X_ref)
        ds.on_epoch_end()
    X_all, y_all = ds.to_arrays()
    np.testing.assert_array_equal(X_all, X_ref)
    np.testing.assert_array_equal(y_all, y_ref)


@settings(max_examples=25, deadline=None)
@given(window_configs())
def test_window_dataset_equals_timeseries_dataset_from_array(config):
    """Needs TensorFlow installed (the Keras utility returns tf.data), whatever the backend."""
    data = series(config["n"], max(config["n_features"], 2))
    lookback, delay, step = config["lookback"], config["delay"], config["step"]
    min_index, batch_size = config["min_index"], config["batch_size"]
    max_index = config["max_index"] or len(data) - delay
    ds = WindowDataset(
        data, lookback, delay, step, min_index, max_index, batch_size=batch_size, target_column=1
    )
    n = math.ceil(lookback / step)
    tf_ds = keras.utils.timeseries_dataset_from_array(
        data,
        targets=data[lookback + delay :, 1],
        sequence_length=n,
        sampling_rate=step,
        start_index=min_index,
        end_index=max_index - lookback + (n - 1) * step,
        batch_size=batch_size,
    )
    tf_batches = [(np.asarray(x), np.asarray(y)) for x, y in tf_ds.as_numpy_iterator()]
    assert len(tf_batches) == len(ds)
    for (x_tf, y_tf), (x, y) in zip(tf_batches, ds, strict=True):
        np.testing.assert_array_equal(x, x_tf)
        np.testing.assert_array_equal(y, y_tf)


# ----------------------------------------------------------- WindowDataset: the notes' bugs fixed


def test_bug1_target_slot_notes_crash_fixed_by_target_column():
    data = series(200, 3)
    with pytest.raises(ValueError):
        next(notes_generator(data, lookback=12, delay=3, step=3, batch_size=4))
    x, y = WindowDataset(data, lookback=12, delay=3, step=3, batch_size=4, target_column=2)[0]
    assert x.shape == (4, 4, 3) and y.shape == (4,)
    np.testing.assert_array_equal(y, data[[15, 16, 17, 18], 2])
    x, y = WindowDataset(data, 12, 3, 3, batch_size=4)[0]  # None: all columns
    np.testing.assert_array_equal(y, data[[15, 16, 17, 18]])


def test_bug2_step_not_dividing_lookback_notes_crash_fixed():
    data = series(50, 1)
    with pytest.raises(ValueError, match="broadcast"):
        next(notes_generator(data[:, :1], lookback=10, delay=0, step=3, batch_size=2))
    x, _ = WindowDataset(data, lookback=10, delay=0, step=3, batch_size=2)[0]
    assert x.shape == (2, 4, 1)  # ceil(10 / 3) rows: r-10, r-7, r-4, r-1
    assert x[0, :, 0].tolist() == [0, 3, 6, 9]


def test_bug3_and_bug4_every_row_used_and_last_row_is_a_target():
    data = series(200, 1)
    # The notes' sequential mode (with its own default max_index) never reaches rows 162..196.
    gen = notes_generator(data, lookback=12, delay=3, batch_size=50, step=1, target_col=0)
    rows = {int(r) + 1 for _ in range(8) for r in next(gen)[0][:, -1, 0]}
    assert min(rows) == 12 and max(rows) == 161
    ds = WindowDataset(data, lookback=12, delay=3, batch_size=50)
    assert len(ds) == 4 and len(ds[3][0]) == 185 - 150
    X, y = epoch(ds)
    assert sorted(X[:, -1, 0] + 1) == list(range(12, 197))
    assert y[-1] == data[-1, 0] == 199


def test_bug5_shuffle_is_a_seeded_permutation_redrawn_each_epoch():
    data = series(60, 1)

    def order(ds):
        return (epoch(ds)[0][:, 0, 0] + ds.lookback).astype(int).tolist()

    a = WindowDataset(data, 5, 0, shuffle=True, batch_size=7, seed=3)
    b = WindowDataset(data, 5, 0, shuffle=True, batch_size=7, seed=3)
    first = order(a)
    assert first == order(b) and sorted(first) == list(range(5, 60)) and first != sorted(first)
    a.on_epoch_end()
    assert order(a) != first and sorted(order(a)) == sorted(first)
    keras.utils.set_random_seed(1)
    c = WindowDataset(data, 5, 0, shuffle=True)
    keras.utils.set_random_seed(1)
    assert order(c) == order(WindowDataset(data, 5, 0, shuffle=True))


# ------------------------------------------------------------- WindowDataset: arguments and input


def test_window_dataset_rejects_bad_arguments_by_name():
    cases = [
        ({"lookback": 0}, "lookback=0"),
        ({"lookback": -3}, "lookback=-3"),
        ({"step": 0}, "step=0"),
        ({"step": 6}, "step=6"),
        ({"delay": -1}, "delay=-1"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"min_index": -1}, "min_index=-1"),
        ({"min_index": 20}, "min_index=20"),
        ({"max_index": 19}, "max_index=19"),
        ({"max_index": 0}, "max_index=0"),
        ({"min_index": 10, "max_index": 8}, "crossed.*min_index=10, max_index=8"),
        ({"min_index": 10, "max_index": 14}, "too few rows.*lookback=5"),
        ({"lookback": 5, "delay": 15}, "too few rows"),
        ({"target_column": 3}, "target_column`=3"),
        ({"target_column": -4}, "target_column`=-4"),
        ({"target_column": True}, "target_column=True"),
        ({"target_column": []}, "target_column=\\[\\]"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            WindowDataset(series(20, 3), **{"lookback": 5, "delay": 2, **kwargs})


def test_window_dataset_rejects_non_numeric_and_nan_data():
    with pytest.raises(ValueError, match="`data` must be numeric"):
        WindowDataset(np.array([["a", "b"]] * 10), 2, 0)
    with pytest.raises(ValueError, match="`data` must be 1-D"):
        WindowDataset(np.zeros((10, 2, 2)), 2, 0)
    data = series(30, 2)
    data[25, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*input rows.*row 25.*allow_nan=True"):
        WindowDataset(data, 4, 0)
    with pytest.raises(ValueError, match="NaN.*targets.*row 25"):
        WindowDataset(data, 4, 2, max_index=24, target_column=1)
    WindowDataset(data, 4, 2, max_index=24, target_column=0)  # NaN neither read nor a target
    x, _ = WindowDataset(data, 4, 0, allow_nan=True).to_arrays()
    assert np.isnan(x).any()


def test_window_dataset_accepts_1d_data_and_dataframe_column_names():
    x, y = WindowDataset(np.arange(10.0), 3, 1, batch_size=4)[0]
    assert x.shape == (4, 3, 1) and y.tolist() == [4, 5, 6, 7]
    frame = pd.DataFrame({"t": np.arange(10.0), "v": np.arange(10.0) * 10})
    x, y = WindowDataset(frame, 3, 0, target_column="v", batch_size=2)[0]
    assert x.dtype == np.float32 and y.tolist() == [30, 40]
    x, y = WindowDataset(frame, 3, 0, target_column=["v", "t"], batch_size=2)[0]
    assert y.tolist() == [[30, 3], [40, 4]]


def test_window_dataset_indexing_and_pydataset_arguments():
    ds = WindowDataset(series(20, 1), 4, 0, batch_size=5, workers=2, max_queue_size=3)
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (2, False, 3)
    np.testing.assert_array_equal(ds[-1][0], ds[len(ds) - 1][0])
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]


def test_window_dataset_trains_evaluates_and_predicts_in_keras():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(300, 3)).astype("float32")
    train = WindowDataset(
        data, 12, 2, step=3, max_index=200, shuffle=True, batch_size=32, target_column=0, seed=0
    )
    val = WindowDataset(data, 12, 2, step=3, min_index=200, batch_size=32, target_column=0)
    model = keras.Sequential(
        [keras.Input((train.window_length, 3)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(train, validation_data=val, epochs=1, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])
    assert np.isfinite(model.evaluate(val, verbose=0))
    predictions = model.predict(val, verbose=0)
    assert predictions.shape == (val.n_windows, 1)
