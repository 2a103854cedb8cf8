"""Windows per second of three ways to batch sliding windows, measured side by side in one run.

    KERAS_BACKEND=tensorflow .venv/bin/python bench/windows.py [--repeats 5] [--batches N]

The three produce the same windows and targets in the same batches (checked before timing):

* ``kdl.data.WindowDataset`` (NumPy fancy indexing, one gather per batch);
* the course notes' Chollet-style generator, minimally fixed so that it runs (its target line
  selects a column, as in Chollet's original; everything else verbatim, Python loop included);
* ``keras.utils.timeseries_dataset_from_array`` iterated to NumPy (needs TensorFlow installed).

The shape follows Chollet's Jena example: 14 features, lookback 720 rows sampled every 6th
(120 rows per window), target 144 rows later, batches of 128, 20,000 rows. A repeat draws the
149 full batches of one epoch from a fresh iterator (start-up included) of each, in turn. Prints
the median windows per second over the repeats and the ratios of WindowDataset to the other two.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import keras
import numpy as np

from kdl.data import WindowDataset

ROWS, FEATURES, LOOKBACK, STEP, DELAY, BATCH, TARGET = 20_000, 14, 720, 6, 144, 128, 1


def notes_generator(
    data,
    lookback,
    delay,
    min_index=0,
    max_index=None,
    shuffle=False,
    batch_size=128,
    step=6,
    target_col=1,
):
    """The notes' generator; the one fix is ``[target_col]`` on the target line (it crashed)."""
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
        for j, _row in enumerate(rows):
            indices = range(rows[j] - lookback, rows[j], step)
            samples[j] = data[indices]
            targets[j] = data[rows[j] + delay][target_col]
        yield samples, targets


def tf_data_batches(data: np.ndarray):
    n = math.ceil(LOOKBACK / STEP)
    return keras.utils.timeseries_dataset_from_array(
        data,
        targets=data[LOOKBACK + DELAY :, TARGET],
        sequence_length=n,
        sampling_rate=STEP,
        end_index=len(data) - DELAY - LOOKBACK + (n - 1) * STEP,
        batch_size=BATCH,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--batches",
        type=int,
        default=None,
        help="batches per repeat (default: one epoch's full ones)",
    )
    args = parser.parse_args()
    data = np.random.default_rng(0).normal(size=(ROWS, FEATURES)).astype("float32")
    k = args.batches or (ROWS - LOOKBACK - DELAY) // BATCH

    def window_dataset():
        ds = WindowDataset(data, LOOKBACK, DELAY, STEP, batch_size=BATCH, target_column=TARGET)
        return (ds[i] for i in range(k))

    def notes():
        gen = notes_generator(data, LOOKBACK, DELAY, step=STEP, batch_size=BATCH)
        return (next(gen) for _ in range(k))

    tf_ds = tf_data_batches(data)

    def tf_data():
        return tf_ds.take(k).as_numpy_iterator()

    candidates = {"WindowDataset": window_dataset, "notes' generator": notes, "tf.data": tf_data}
    firsts = [next(iter(make())) for make in candidates.values()]
    for x, y in firsts[1:]:  # the same first batch everywhere
        np.testing.assert_allclose(x, firsts[0][0])
        np.testing.assert_allclose(y, firsts[0][1])

    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, make in candidates.items():  # interleaved, so load changes hit all three
            start = time.perf_counter()
            windows = sum(len(x) for x, _ in make())
            rates[name].append(windows / (time.perf_counter() - start))
    print(
        f"{k} batches of {BATCH} windows ({math.ceil(LOOKBACK / STEP)} x {FEATURES}), "
        f"median of {args.repeats} repeats, backend {keras.backend.backend()}"
    )
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, rate in medians.items():
        print(f"  {name:18s} {rate:>12,.0f} windows/s")
    ours, notes_rate, tf_rate = medians.values()
    print(f"  WindowDataset / notes' generator: {ours / notes_rate:.1f}x")
    print(f"  WindowDataset / tf.data:          {ours / tf_rate:.1f}x")


if __name__ == "__main__":
    main()
