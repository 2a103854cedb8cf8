"""Sliding windows over time series, in NumPy, for every Keras backend.

Two tools cut a series into (input window, target) pairs:

* ``sliding_windows`` builds every window at once as NumPy arrays: the simple choice for small data.
* ``WindowDataset`` is a ``keras.utils.PyDataset`` that assembles each batch on demand, so the
  heavily overlapping windows are never stored. It keeps the interface of the Chollet-style
  ``generator(data, lookback, delay, ...)`` of the course notes, with that generator's bugs fixed.

Neither imports TensorFlow: ``keras.utils.timeseries_dataset_from_array`` returns a ``tf.data``
pipeline and therefore needs TensorFlow even on the JAX and PyTorch backends.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

__all__ = ["WindowDataset", "sliding_windows"]

TargetColumn = int | str | Sequence[int | str] | None


def _check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int, or raise a ValueError naming the argument and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {name}={value!r}")
    return int(value)


def _numeric_array(data: Any, allow_nan: bool, name: str) -> tuple[np.ndarray, list | None]:
    """Return (1-D or 2-D numeric array, column names or None) after checking argument ``name``."""
    columns = list(data.columns) if hasattr(data, "columns") else None
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"`{name}` must be numeric (bool, integer or float), got an array of "
            f"dtype={array.dtype}; select the numeric columns first"
        )
    if array.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be 1-D (time,) or 2-D (time, features), got shape={array.shape}"
        )
    if not allow_nan and array.dtype.kind == "f":
        bad = np.argwhere(np.isnan(array))
        if len(bad):
            where = f"row {bad[0][0]}" + (f", column {bad[0][1]}" if array.ndim == 2 else "")
            raise ValueError(
                f"`{name}` contains {len(bad)} NaN value(s), the first at {where}; fill or drop "
                "them, or pass allow_nan=True to window them anyway"
            )
    return array, columns


def _target_columns(target_column: TargetColumn, n_features: int, columns: list | None):
    """Return None (all columns), an int (one column) or a list of ints, each in range."""

    def one(c):
        if isinstance(c, str):
            if columns is None or c not in columns:
                known = "data has no column names" if columns is None else f"columns: {columns}"
                raise ValueError(f"`target_column`={c!r} is not a column of `data` ({known})")
            return columns.index(c)
        if isinstance(c, bool) or not isinstance(c, numbers.Integral):
            raise ValueError(
                "`target_column` must be None, a column index or name, or a list of them, "
                f"got target_column={target_column!r}"
            )
        if not -n_features <= c < n_features:
            raise ValueError(
                f"`target_column`={c!r} is out of range for data with {n_features} column(s)"
            )
        return int(c) % n_features

    if target_column is None:
        return None
    if isinstance(target_column, (str, numbers.Integral)):
        return one(target_column)
    if isinstance(target_column, (Sequence, np.ndarray)) and len(target_column) > 0:
        return [one(c) for c in target_column]
    raise ValueError(
        "`target_column` must be None, a column index or name, or a non-empty list of them, "
        f"got target_column={target_column!r}"
    )


def _check_lookback_step(lookback: Any, step: Any) -> tuple[int, int]:
    lookback = _check_int("lookback", lookback, 1)
    step = _check_int("step", step, 1)
    if step > lookback:
        raise ValueError(f"`step` must be <= lookback={lookback}, got step={step}")
    return lookback, step


def sliding_windows(
    x: Any,
    lookback: int,
    horizon: int = 1,
    step: int = 1,
    target_column: TargetColumn = None,
    *,
    allow_nan: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Return every (window, target) pair of a series as two NumPy arrays ``(X, y)``.

    Window ``i`` spans the ``lookback`` rows ``x[i], ..., x[i + lookback - 1]``; of these it keeps
    every ``step``-th row starting with the first, ``x[i : i + lookback : step]``, which is
    ``ceil(lookback / step)`` rows. Its target is the row ``horizon`` steps after the last row of
    the span: ``x[i + lookback - 1 + horizon]`` (with ``horizon=1``, the row right after the
    window). Windows start at every row, ``i = 0, 1, ..., len(x) - lookback - horizon``, so there
    are ``len(x) - lookback - horizon + 1`` of them and every row from ``lookback + horizon - 1``
    on is a target exactly once.

    For 1-D ``x`` and ``step=1, horizon=1`` this is the course notes' ``slip_windows(x, lookback)``,
    computed without a Python loop (``numpy.lib.stride_tricks.sliding_window_view``). It equals
    ``WindowDataset(x, lookback, delay=horizon - 1, step=step).to_arrays()`` for any input, except
    that it keeps the dtype of ``x`` and the 1-D shape of 1-D windows. The arrays are copies: for a
    long series with a long window, prefer ``WindowDataset``, which never stores the windows.

    Args:
        x: array-like of shape ``(time,)`` or ``(time, features)`` (a DataFrame works too), numeric.
        lookback: number of rows a window spans, >= 1.
        horizon: how many rows after the window's last row the target is, >= 1.
        step: keep every ``step``-th row of the span, 1 <= step <= lookback.
        target_column: for 2-D ``x``, which column(s) the target is: None for all columns, an
            index or a column name (a DataFrame's) for one, a list for several.
        allow_nan: if False (the default), NaN in ``x`` raises a ValueError.

    Returns:
        ``X`` of shape ``(n, ceil(lookback / step))`` for 1-D ``x`` (add a feature axis with
        ``X[..., None]`` for an RNN) or ``(n, ceil(lookback / step), features)`` for 2-D ``x``;
        ``y`` of shape ``(n,)`` for 1-D ``x`` or one target column, ``(n, k)`` for a list of
        ``k`` columns, ``(n, features)`` when ``target_column`` is None.

    Raises:
        ValueError: naming the argument and its value, for a non-positive ``lookback``, ``horizon``
            or ``step``, ``step > lookback``, a target column out of range, non-numeric data,
            NaN (unless ``allow_nan``), or fewer than ``lookback + horizon`` rows.

    Example:
    >>> X, y = sliding_windows(np.arange(10), lookback=4)
    >>> X.shape, y.shape
    ((6, 4), (6,))
    >>> X[0].tolist(), int(y[0]), X[-1].tolist(), int(y[-1])
    ([0, 1, 2, 3], 4, [5, 6, 7, 8], 9)
    >>> X, y = sliding_windows(np.arange(20).reshape(10, 2), lookback=5, horizon=2, step=2,
    ...                        target_column=1)
    >>> X.shape, y.shape
    ((4, 3, 2), (4,))
    >>> X[0].tolist(), int(y[0])   # rows 0, 2, 4 of the span 0..4; target: row 4 + 2 = 6
    ([[0, 1], [4, 5], [8, 9]], 13)
    """
    lookback, step = _check_lookback_step(lookback, step)
    horizon = _check_int("horizon", horizon, 1)
    array, columns = _numeric_array(x, allow_nan, "x")
    n = len(array) - lookback - horizon + 1
    if n < 1:
        raise ValueError(
            f"too few rows for one window: `x` has {len(array)} row(s), but lookback={lookback} "
            f"and horizon={horizon} need at least {lookback + horizon}"
        )
    features = array[:, None] if array.ndim == 1 else array
    col = _target_columns(target_column, features.shape[1], columns)
    # sliding_window_view puts the window axis last: (n, features, lookback).
    views = np.lib.stride_tricks.sliding_window_view(features[: n + lookback - 1], lookback, axis=0)
    X = np.ascontiguousarray(np.moveaxis(views[..., ::step], -1, 1))
    y = features[lookback - 1 + horizon : lookback - 1 + horizon + n]
    y = y if col is None else y[:, col]
    if array.ndim == 1:
        X, y = X[..., 0], (y[:, 0] if col is None else y)
    return X, np.array(y)


class WindowDataset(keras.utils.PyDataset):
    """Batches of (window, target) pairs cut on demand from a time series, for ``model.fit``.

    The course notes' Chollet-style ``generator(data, lookback, delay, ...)`` rebuilt as a
    ``keras.utils.PyDataset``: same arguments and meaning, every bug fixed, NumPy only (no
    TensorFlow), so it runs in ``fit``/``evaluate``/``predict`` on every backend.

    **Meaning.** A window is identified by its *row* ``r``, the index just after the window. Its
    input is ``data[r - lookback : r : step]`` (``ceil(lookback / step)`` rows) and its target is
    ``data[r + delay, target_column]``. So ``delay=0`` predicts the row right after the window,
    ``delay`` rows later than that in general; the target is ``delay + 1`` rows after the last row
    of the lookback span. The eligible rows are ``r = min_index + lookback, ..., max_index - 1``:
    ``min_index`` is the first row a window may read and ``max_index`` is exclusive, so the last
    target is row ``max_index - 1 + delay`` (as in the notes): when you split a series by time,
    stop a range ``delay`` rows early (``max_index = end - delay``) if its targets must stay below
    ``end``.

    **Bugs of the notes' generator, and the fixes.**

    1. The target slot was a scalar but received a whole row of features (a ValueError for every
       multi-column input, and on NumPy >= 2 even for one column). Fixed: ``target_column``
       selects the target column(s); None means all columns.
    2. The window buffer had ``lookback // step`` slots, so a ``step`` that does not divide
       ``lookback`` crashed. Fixed: a window has ``ceil(lookback / step)`` rows.
    3. Sequential mode skipped the last partial batch (and wrapped one batch early), so some rows
       were never used. Fixed: ``len()`` is ``ceil(n_windows / batch_size)`` and every eligible
       window appears exactly once per epoch; the last batch may be shorter.
    4. The default ``max_index`` was ``len(data) - delay - 1``, one too small, so the last row was
       never a target. Fixed: the default is ``len(data) - delay``, which makes the last row of
       ``data`` the last target.
    5. Shuffling drew rows with replacement (duplicates within a batch, rows missed in an epoch)
       from NumPy's unseeded global state. Fixed: each epoch is a permutation of the eligible
       windows from a ``numpy.random.Generator`` seeded by ``seed``; ``on_epoch_end`` draws the
       next epoch's permutation. With ``seed=None`` the seed is drawn from NumPy's global state,
       so ``keras.utils.set_random_seed`` (or ``kdl.setup``) makes it reproducible.

    Also unlike the notes, 1-D data works (it is treated as one column) and a pandas DataFrame may
    be passed, with ``target_column`` given by name.

    Note that ``model.fit`` also shuffles the *order of the batches* of any ``PyDataset`` (its own
    ``shuffle=True`` default), keeping each batch's windows together: pass ``fit(...,
    shuffle=False)`` for chronological batches, and ``shuffle=True`` here to mix the windows.

    **Relation to ``keras.utils.timeseries_dataset_from_array``.** With
    ``n = ceil(lookback / step)`` and a single target column ``c``, the call::

        timeseries_dataset_from_array(
            data, targets=data[lookback + delay:, c], sequence_length=n, sampling_rate=step,
            start_index=min_index, end_index=max_index - lookback + (n - 1) * step,
            batch_size=batch_size)

    yields the same windows and targets, in the same batches, as this dataset with
    ``shuffle=False``: its window starting at ``s`` is this dataset's row ``r = s + lookback``, and
    its target offset ``lookback + delay`` is counted from the window's first row. The
    ``end_index`` makes the last window start at ``max_index - 1 - lookback``. (Shuffled orders
    differ: that function shuffles within a buffer, this one permutes all windows.)

    Args:
        data: array-like of shape ``(time, features)`` or ``(time,)``, numeric; converted once to
            a float32 array.
        lookback: rows spanned by a window, >= 1.
        delay: how many rows after row ``r`` (the row just after the window) the target is, >= 0.
        step: keep every ``step``-th row of the window, 1 <= step <= lookback (the notes'
            default was 6, for 10-minute data sampled hourly).
        min_index: first row a window may read, 0 <= min_index.
        max_index: exclusive upper bound on the row ``r``; at most ``len(data) - delay`` (the
            default), so that every target exists.
        shuffle: if True, a fresh seeded permutation of the windows every epoch.
        batch_size: windows per batch (the last batch may be smaller), >= 1.
        target_column: None for all columns (1-D data: the series itself), a column index or a
            DataFrame column name for one column, or a list of them.
        seed: seed of the shuffling generator.
        allow_nan: if False (the default), NaN in the rows the dataset reads raises a ValueError.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Batches:
        ``(x, y)`` with ``x`` float32 of shape ``(batch, ceil(lookback / step), features)`` and
        ``y`` float32 of shape ``(batch,)`` for one target column (or 1-D data), ``(batch, k)``
        for a list of ``k`` columns, ``(batch, features)`` for all columns.

    Raises:
        ValueError: naming the argument and its value, for a non-positive ``lookback``, ``step``
            or ``batch_size``, ``step > lookback``, a negative ``delay``, ``min_index`` or
            ``max_index`` out of range or crossed, too few rows for one window, a target column
            out of range, non-numeric data, or NaN (unless ``allow_nan``).

    Example:
    >>> data = np.arange(40, dtype="float32").reshape(20, 2)   # row t is [2t, 2t + 1]
    >>> ds = WindowDataset(data, lookback=6, delay=2, step=3, batch_size=4, target_column=1)
    >>> len(ds), ds.n_windows, ds.window_length
    (3, 12, 2)
    >>> x, y = ds[0]
    >>> x.shape, y.shape
    ((4, 2, 2), (4,))
    >>> x[0].tolist(), float(y[0])   # rows 0 and 3 for r = 6; target row 6 + 2 = 8
    ([[0.0, 1.0], [6.0, 7.0]], 17.0)
    >>> [len(ds[i][1]) for i in range(len(ds))]   # the last batch is short, not dropped
    [4, 4, 4]
    >>> X, Y = ds.to_arrays()
    >>> X.shape, float(Y[-1])   # the last target is the last row of data
    ((12, 2, 2), 39.0)
    """

    def __init__(
        self,
        data: Any,
        lookback: int,
        delay: int,
        step: int = 1,
        min_index: int = 0,
        max_index: int | None = None,
        shuffle: bool = False,
        batch_size: int = 128,
        target_column: TargetColumn = None,
        seed: int | None = None,
        *,
        allow_nan: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lookback, self.step = _check_lookback_step(lookback, step)
        self.delay = _check_int("delay", delay, 0)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        array, columns = _numeric_array(data, allow_nan=True, name="data")
        n_rows = len(array)
        self.min_index = _check_int("min_index", min_index, 0)
        if self.min_index >= n_rows:
            raise ValueError(
                f"`min_index` must be < len(data)={n_rows}, got min_index={self.min_index}"
            )
        if max_index is None:
            self.max_index = n_rows - self.delay
        else:
            self.max_index = _check_int("max_index", max_index, 1)
            if self.max_index > n_rows - self.delay:
                raise ValueError(
                    f"`max_index` must be <= len(data) - delay = {n_rows} - {self.delay} = "
                    f"{n_rows - self.delay} so that every target exists, "
                    f"got max_index={self.max_index}"
                )
            if self.max_index <= self.min_index:
                raise ValueError(
                    f"`min_index` and `max_index` are crossed: need min_index < max_index, got "
                    f"min_index={self.min_index}, max_index={self.max_index}"
                )
        if self.max_index - self.min_index <= self.lookback:
            raise ValueError(
                f"too few rows for one window: rows min_index={self.min_index} to "
                f"max_index={self.max_index} (exclusive) of data with {n_rows} rows and "
                f"delay={self.delay} leave {max(self.max_index - self.min_index, 0)} row(s), "
                f"but lookback={self.lookback} needs at least {self.lookback + 1}"
            )
        self.shuffle = bool(shuffle)
        features = array if array.ndim == 2 else array[:, None]
        col = _target_columns(target_column, features.shape[1], columns)
        self.target_column = col
        if not allow_nan and features.dtype.kind == "f":
            first_target = self.min_index + self.lookback + self.delay
            targets = features[first_target : self.max_index + self.delay]
            targets = targets if col is None else targets[:, np.atleast_1d(col)]
            for what, part, offset in (
                ("input rows", features[self.min_index : self.max_index], self.min_index),
                ("targets", targets, first_target),
            ):
                bad = np.flatnonzero(np.isnan(part).any(axis=1))
                if len(bad):
                    raise ValueError(
                        f"`data` has NaN in {len(bad)} of the {what} this dataset reads, the first "
                        f"at row {bad[0] + offset}; fill or drop them, or pass allow_nan=True"
                    )
        self._features = np.ascontiguousarray(features, dtype="float32")
        if col is None:
            targets = self._features[:, 0] if array.ndim == 1 else self._features
        else:
            targets = self._features[:, col]
        self._targets = np.ascontiguousarray(targets)
        self._offsets = np.arange(-self.lookback, 0, self.step)
        self.rows = np.arange(self.min_index + self.lookback, self.max_index)
        self.rows.flags.writeable = False
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self.rows) if self.shuffle else self.rows

    @property
    def n_windows(self) -> int:
        """Number of windows in one epoch."""
        return len(self.rows)

    @property
    def window_length(self) -> int:
        """Rows per input window, ``ceil(lookback / step)``."""
        return len(self._offsets)

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def _windows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.take(self._features, rows[:, None] + self._offsets, axis=0)
        y = np.take(self._targets, rows + self.delay, axis=0)
        return x, y

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch index {index} is out of range for {len(self)} batches")
        start = (index % len(self)) * self.batch_size
        return self._windows(self._order[start : start + self.batch_size])

    def on_epoch_end(self) -> None:
        """Draw a new permutation of the windows when shuffling."""
        if self.shuffle:
            self._order = self._rng.permutation(self.rows)

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return all windows and targets as two arrays, in row order (whatever ``shuffle`` is)."""
        return self._windows(self.rows)
