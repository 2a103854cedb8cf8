"""What a size limit on JAX's persistent compilation cache costs, side by side in one run.

    .venv/bin/python bench/jax_cache_limit.py [--fill 06 07 08] [--chapters 02 04]

With ``JAX_COMPILATION_CACHE_MAX_SIZE`` set, JAX's cache (``jax/_src/lru_cache.py``) takes a file
lock and reads the size and access time of *every* entry in the folder before each write, so a
write costs time in proportion to what the folder already holds. A reader's cache fills up over
the chapters, so the cost is measured where it matters: on chapters whose programs are not yet in
a folder that other chapters have filled.

The bench first fills a folder by running the ``--fill`` chapters with the cache on, copies it,
then runs the ``--chapters`` (with `kdl run --backend jax --jobs 1 --no-html`) five ways: no cache;
an empty folder without and with a 1 GB limit; the filled folder without and with the limit. It
prints each variant's wall seconds and its ratio to "no cache".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = str(1 << 30)


def kdl_run(chapters: list[str], env: dict[str, str], build: Path) -> float:
    """Run the chapters on JAX in one kdl run; return its wall seconds (exit on a failure)."""
    cmd = [sys.executable, "-m", "kdl", "run", *chapters, "--backend", "jax", "--jobs", "1",
           "--no-html", "--build-dir", str(build)]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"kdl run failed:\n{done.stdout}\n{done.stderr}")
    return wall


def entries(folder: Path) -> int:
    return len(list(folder.glob("*-cache")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", nargs="+", default=["06", "07", "08"])
    parser.add_argument("--chapters", nargs="+", default=["02", "04"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kdl-bench-jax-cache-"))
    filled = work / "filled"
    # filled with the limit on, so that every entry has the access-time file the limit reads
    kdl_run(args.fill, {"JAX_COMPILATION_CACHE_DIR": str(filled),
                        "JAX_COMPILATION_CACHE_MAX_SIZE": LIMIT}, work / "b-fill")
    print(f"filled by chapters {' '.join(args.fill)}: {entries(filled)} programs", flush=True)
    shutil.copytree(filled, work / "filled-limit")
    variants = {
        "no cache": {"JAX_ENABLE_COMPILATION_CACHE": "false"},
        "empty folder": {"JAX_COMPILATION_CACHE_DIR": str(work / "empty")},
        "empty folder, 1 GB limit": {"JAX_COMPILATION_CACHE_DIR": str(work / "empty-limit"),
                                     "JAX_COMPILATION_CACHE_MAX_SIZE": LIMIT},
        "filled folder": {"JAX_COMPILATION_CACHE_DIR": str(filled)},
        "filled folder, 1 GB limit": {"JAX_COMPILATION_CACHE_DIR": str(work / "filled-limit"),
                                      "JAX_COMPILATION_CACHE_MAX_SIZE": LIMIT},
    }
    walls = {}
    for number, (name, env) in enumerate(variants.items()):
        walls[name] = kdl_run(args.chapters, env, work / f"b-{number}")
        print(f"{name:<28} {walls[name]:7.1f} s  {walls[name] / walls['no cache']:5.2f}x", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
