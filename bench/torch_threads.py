"""Torch training speed on a busy and on a quiet CPU under three OpenMP settings, side by side.

    .venv/bin/python bench/torch_threads.py [--repeats 3] [--busy 2]

Why: ``make test`` and ``python -m kdl run`` run on shared machines. PyTorch's CPU kernels use an
OpenMP thread pool whose idle threads *spin* (busy-wait) by default, waiting for the next parallel
region. When other processes already occupy the cores, spinning threads steal the time slices the
working threads need, and many small kernels (a GRU on short windows, a small CNN) slow down by
far more than the load alone explains. ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep.

The bench starts ``--busy`` processes that each burn one core (a stand-in for the other work on a
shared machine), then times, in fresh interpreters with ``KERAS_BACKEND=torch``, the same small
``fit`` (a GRU forecaster and a Conv1D classifier from ``kdl.models``, a few epochs on random data)
with OpenMP's defaults, with ``OMP_WAIT_POLICY=PASSIVE`` and with ``OMP_NUM_THREADS=1``, taking
turns ``--repeats`` times. It prints each variant's median wall time and its speed-up over the
default, then the same with no busy processes: the quiet-machine cost of each setting.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

WORKLOAD = r"""
import time
import numpy as np
import keras
from kdl.models import conv1d_classifier, forecaster

rng = np.random.default_rng(0)
x = rng.normal(size=(512, 24, 6)).astype("float32")
y_reg = rng.normal(size=(512, 1)).astype("float32")
y_cls = rng.integers(0, 4, size=512)
start = time.perf_counter()
gru = forecaster((24, 6), kind="gru", units=16)
gru.compile("adam", "mse")
gru.fit(x, y_reg, epochs=3, batch_size=32, verbose=0)
cnn = conv1d_classifier((24, 6), num_classes=4, filters=(16, 16))
cnn.compile("adam", "sparse_categorical_crossentropy")
cnn.fit(x, y_cls, epochs=3, batch_size=32, verbose=0)
print(time.perf_counter() - start)
"""


def burn() -> None:
    while True:
        pass


VARIANTS = {"default": {}, "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
            "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"}}


def time_workload(settings: dict[str, str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(KERAS_BACKEND="torch", **settings)
    out = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def compare(repeats: int, busy: int) -> None:
    burners = [mp.Process(target=burn, daemon=True) for _ in range(busy)]
    for process in burners:
        process.start()
    try:
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(repeats):
            for name, settings in VARIANTS.items():
                times[name].append(time_workload(settings))
    finally:
        for process in burners:
            process.terminate()
    default = statistics.median(times["default"])
    print(f"{busy} busy process(es), {os.cpu_count()} cores, median of {repeats}:", flush=True)
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"  {name:>24}: {median:6.2f} s, default / this = {default / median:5.2f}x  "
              f"(runs {[round(t, 2) for t in runs]})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="processes that each burn one core")
    args = parser.parse_args()
    start = time.perf_counter()
    compare(args.repeats, args.busy)
    compare(args.repeats, 0)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
