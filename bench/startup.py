"""Start-up cost of a chapter: kernel start to the end of the setup cell, per backend, before and
after kdl.setup stopped importing TensorFlow on JAX and PyTorch.

"before" reproduces the old setup cell (``keras.utils.set_random_seed``, which imports TensorFlow
on every backend, then ``kdl.setup``); "after" is the setup cell the chapters have. The variants
alternate within each backend, in one run; the median of the repeats and the ratio are printed.

    .venv/bin/python bench/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import nbclient
import nbformat

CELLS = {
    "before": "import keras\nkeras.utils.set_random_seed(0)\nimport kdl\nkdl.setup(seed=0)",
    "after": "import kdl\nkdl.setup(seed=0)",
}


def seconds_to_setup(source: str, backend: str) -> float:
    """Start a kernel on ``backend``, run ``source`` in it; return the wall seconds of both."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    os.environ["KERAS_BACKEND"] = backend
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3")
    start = time.perf_counter()
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"{'backend':<11} {'before s':>9} {'after s':>8} {'after/before':>13}  (median of {args.repeats})")
    for backend in args.backends:
        times = {name: [] for name in CELLS}
        for _ in range(args.repeats):
            for name, source in CELLS.items():  # alternate, so load changes hit both alike
                times[name].append(seconds_to_setup(source, backend))
        before, after = (statistics.median(times[n]) for n in CELLS)
        print(f"{backend:<11} {before:>9.2f} {after:>8.2f} {after / before:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
