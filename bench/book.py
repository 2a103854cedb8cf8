"""The wall time of the whole book per backend, with and without each speed-up, in one run.

The speed-ups: kdl's start-up without TensorFlow on JAX and PyTorch, `kdl run --jobs 2`, and JAX's
persistent compilation cache.

Variants, each a full `kdl run --no-html` of every chapter in a fresh build folder, one after the
other on the same machine:

- ``before``: the start-up as it was, a kernel that imports TensorFlow through
  ``keras.utils.set_random_seed`` (as kdl.setup and the chapters' reseeding cells did; here an
  IPython start-up file in a private IPYTHONDIR), no JAX cache.
  Skipped on TensorFlow, where before and after run the same code (TensorFlow is the backend).
- ``after``: the chapters as they are, one job, no JAX cache (``JAX_ENABLE_COMPILATION_CACHE=false``).
- ``jobs2``: as ``after`` with ``--jobs 2``.
- JAX only: ``cache-cold`` (the persistent cache on, in an empty folder) and ``cache-warm`` (the
  same folder again, as a reader's second run finds it); the folder's size is printed;
  ``cache-limit``: as ``cache-cold`` with a 1 GB size limit, in a folder of its own.

Prints per chapter seconds and the wall time of each variant with ratios to ``after``; the rows
also go to ``_build/bench-book.json``. A full run takes about an hour on a 2-core machine.

    .venv/bin/python bench/book.py [--backends jax] [--chapters 04 07]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE_STARTUP = "import keras\nkeras.utils.set_random_seed(0)\n"


def run_book(backend: str, chapters: list[str], extra_env: dict[str, str], jobs: int,
             work: Path) -> dict:
    """One `kdl run` of ``chapters`` on ``backend``; return its wall seconds and per-chapter rows."""
    build = Path(tempfile.mkdtemp(dir=work, prefix=f"{backend}-"))
    env = {**os.environ, "MPLBACKEND": "Agg", **extra_env}
    cmd = [sys.executable, "-m", "kdl", "run", *chapters, "--backend", backend, "--no-html",
           "--build-dir", str(build), "--jobs", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    rows = json.loads((build / "report.json").read_text()) if (build / "report.json").exists() else []
    failed = [r["chapter"] for r in rows if r["status"] != "passed"]
    if done.returncode or failed:
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
    return {"wall": wall, "chapters": {r["chapter"]: r["seconds"] for r in rows}, "failed": failed}


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--chapters", nargs="*", default=[], help="default: every chapter")
    parser.add_argument("--variants", nargs="+", help="run only these (default: all; 'after' is "
                        "the reference of the ratios, so it always runs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kdl-bench-book-"))
    ipython = work / "ipython-before"
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    (ipython / "profile_default" / "startup" / "00-before.py").write_text(BEFORE_STARTUP)
    off = {"JAX_ENABLE_COMPILATION_CACHE": "false"}
    results = []
    for backend in args.backends:
        variants: dict[str, tuple[dict, int]] = {}
        if backend != "tensorflow":
            variants["before"] = ({**off, "IPYTHONDIR": str(ipython)}, 1)
        variants["after"] = (off, 1)
        variants["jobs2"] = (off, 2)
        cache = work / f"jax-cache-{backend}"
        if backend == "jax":
            variants["cache-cold"] = ({"JAX_COMPILATION_CACHE_DIR": str(cache)}, 1)
            variants["cache-warm"] = ({"JAX_COMPILATION_CACHE_DIR": str(cache)}, 1)
            # what kdl first shipped: the cache with a 1 GB limit, cold (JAX then reads the whole
            # folder on every write; bench/jax_cache_limit.py shows it with a full folder)
            variants["cache-limit"] = ({"JAX_COMPILATION_CACHE_DIR": str(work / "jax-cache-limit"),
                                        "JAX_COMPILATION_CACHE_MAX_SIZE": str(1 << 30)}, 1)
        if args.variants:
            variants = {n: v for n, v in variants.items() if n in args.variants or n == "after"}
        runs = {}
        for name, (env, jobs) in variants.items():
            runs[name] = run_book(backend, args.chapters, env, jobs, work)
            print(f"{backend} {name}: {runs[name]['wall']:.1f} s wall"
                  + (f", FAILED {runs[name]['failed']}" if runs[name]["failed"] else ""), flush=True)
        size = folder_size(cache) if cache.exists() else None
        results.append({"backend": backend, "runs": runs, "jax_cache_bytes_files": size})
        base = runs["after"]
        print(f"\n{backend}: seconds per chapter (kernel start included), ratio to 'after'")
        print(f"{'chapter':<40}" + "".join(f"{n:>12}" for n in runs))
        for chapter in base["chapters"]:
            print(f"{chapter:<40}" + "".join(f"{r['chapters'].get(chapter, float('nan')):>12.1f}"
                                             for r in runs.values()))
        print(f"{'book, wall':<40}" + "".join(f"{r['wall']:>12.1f}" for r in runs.values()))
        print(f"{'book, ratio to after':<40}" + "".join(f"{r['wall'] / base['wall']:>12.2f}"
                                                       for r in runs.values()))
        if size:
            print(f"JAX cache after the cold run and the warm run: {size[0] / 1e6:.1f} MB in "
                  f"{size[1]} files")
        print(flush=True)
    out = ROOT / "_build" / "bench-book.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
