"""The whole test matrix behind `make test`: the suite once per backend, each in its own process.

For each of TensorFlow, JAX and PyTorch, one pytest process started with KERAS_BACKEND set runs
the kdl unit tests and gates in tests/ and executes every chapter under nbval (--nbval-lax: every
cell must run; cells tagged nbval-check-output must reproduce their stored output). At the end it
prints seconds per chapter and backend, the totals, and one closing line over the three runs.
The torch run gets OMP_NUM_THREADS=1 unless the caller sets it (see bench/torch_threads.py).
Every run gets the environment `kdl run` gives a chapter's kernel (kdl.__main__.kernel_env: quiet
TensorFlow logs, JAX's persistent compilation cache in ~/.cache/kdl/jax).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kdl.__main__ import kernel_env

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("tensorflow", "jax", "torch")
BUILD = ROOT / "_build"
CHAPTER_BUDGET_S = 60.0


def run_backend(backend: str, extra: list[str]) -> tuple[int, dict, float]:
    times = BUILD / f"test-times-{backend}.json"
    times.unlink(missing_ok=True)
    env = {
        **kernel_env(backend),
        "KDL_TIMES_JSON": str(times),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tools"), os.environ.get("PYTHONPATH")])),
        "MPLBACKEND": "Agg",
    }
    if backend == "torch":
        # torch's OpenMP threads busy-wait; on a shared CPU they starve each other (bench/torch_threads.py:
        # 4.9x faster with one thread under load; chapters 04/07/09 within 16 % when quiet). A value
        # set by the caller wins.
        env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [
        sys.executable, "-m", "pytest", "tests", "chapters", "-p", "pytest_timing",
        "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600",
        "-q", "-rfE", "--color=no", *extra,
    ]
    print(f"\n===== KERAS_BACKEND={backend}: {' '.join(cmd[2:])}", flush=True)
    start = time.perf_counter()
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - start
    data = json.loads(times.read_text()) if times.exists() else {"files": {}, "items": {}}
    return rc, data, elapsed


def main(argv: list[str]) -> int:
    BUILD.mkdir(exist_ok=True)
    results = {b: run_backend(b, argv) for b in BACKENDS}
    items = {b: data["items"] for b, (_, data, _) in results.items()}
    results = {b: (rc, data["files"], t) for b, (rc, data, t) in results.items()}

    chapters = sorted({p for _, data, _ in results.values() for p in data if p.endswith(".ipynb")})
    units = {b: sum(v["seconds"] for p, v in data.items() if not p.endswith(".ipynb"))
             for b, (_, data, _) in results.items()}
    width = max([len(Path(c).stem) for c in chapters] + [10])
    lines = ["", "Seconds per chapter and backend (kernel start included):", ""]
    lines.append(f"{'chapter':<{width}}  " + "".join(f"{b:>12}" for b in BACKENDS) + f"{'median':>10}")
    for chapter in chapters:
        row, secs = [], []
        for b in BACKENDS:
            entry = results[b][1].get(chapter)
            if entry is None:
                row.append(f"{'-':>12}")
                continue
            secs.append(entry["seconds"])
            mark = "" if entry["status"] == "passed" else " FAIL"
            row.append(f"{entry['seconds']:>7.1f}{mark:>5}")
        med = statistics.median(secs) if secs else 0.0
        flag = "  over the 60 s budget" if med > CHAPTER_BUDGET_S else ""
        lines.append(f"{Path(chapter).stem:<{width}}  " + "".join(row) + f"{med:>10.1f}{flag}")
    lines.append(f"{'unit tests':<{width}}  " + "".join(f"{units[b]:>12.1f}" for b in BACKENDS))
    lines.append(f"{'total':<{width}}  " + "".join(f"{results[b][2]:>12.1f}" for b in BACKENDS)
                 + f"{sum(r[2] for r in results.values()):>10.1f}")
    bad = [b for b, (rc, _, _) in results.items() if rc != 0]
    lines.append("")
    lines.append("backends with failures: " + (", ".join(bad) if bad else "none"))
    print("\n".join(lines))
    (BUILD / "test-times.md").write_text("\n".join(lines) + "\n")
    # One closing line over the three runs (pytest items: unit tests and notebook cells).
    passed = sum(i.get("passed", 0) for i in items.values())
    failed = sum(i.get("failed", 0) for i in items.values())
    skipped = sum(i.get("skipped", 0) for i in items.values())
    print(f"matrix: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
