"""Command line of the course kit: ``python -m kdl info``, ``python -m kdl run`` and
``python -m kdl lab``.

``run`` executes chapters, each in a fresh kernel started with ``KERAS_BACKEND`` set, writes the
executed notebooks to ``_build/<backend>/``, writes a report (``_build/report.md``,
``_build/report.json``), prints one line per chapter and a summary, and builds the book's site
``_build/html/`` from the executed notebooks (``kdl.book``; ``--html-only`` rebuilds just the
site). A failing chapter does not stop the others; the report and its page name the failing cell,
and the exit status is 1 when any chapter failed. ``--jobs N`` runs N chapters at a time.

``lab`` starts JupyterLab on the chapters. Both give the chapters' kernels the environment of
:func:`kernel_env`: the backend, quiet TensorFlow logs, and JAX's persistent compilation cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
# Used when KERAS_BACKEND is not set: the backend measured fastest for the whole book (README).
DEFAULT_BACKEND = "tensorflow"
ROOT = Path(__file__).resolve().parent.parent
CHAPTERS_DIR = ROOT / "chapters"
# Where run writes: the clone's _build/; for an installed kdl (no chapters/ beside the package),
# _build/ in the current directory, never inside site-packages.
BUILD_DIR = ROOT / "_build" if CHAPTERS_DIR.is_dir() else Path("_build")
# Chapters executed at a time by `kdl run`: two on a machine with at least two cores (README:
# bench/book.py measured the whole book at 0.55x-0.70x of one job's wall time on 2 cores).
DEFAULT_JOBS = 2 if (os.cpu_count() or 1) >= 2 else 1


def jax_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return where kdl keeps JAX's compiled programs: ``$XDG_CACHE_HOME/kdl/jax``, by default
    ``~/.cache/kdl/jax`` (variables from ``env``, default ``os.environ``)."""
    env = os.environ if env is None else env
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "kdl" / "jax"


def kernel_env(backend: str, base: Mapping[str, str] | None = None, jobs: int = 1) -> dict[str, str]:
    """Return the environment for a chapter's kernel on ``backend`` (from ``base``, default
    ``os.environ``): ``KERAS_BACKEND``, ``TF_CPP_MIN_LOG_LEVEL=2`` unless set, and JAX's persistent
    compilation cache in :func:`jax_cache_dir` unless ``JAX_COMPILATION_CACHE_DIR`` names another
    folder (JAX's own ``JAX_ENABLE_COMPILATION_CACHE=false`` switches the cache off). With ``jobs``
    kernels at a time, each gets ``OMP_NUM_THREADS`` = cores // jobs unless set: PyTorch's OpenMP
    threads busy-wait, and two kernels that each use every core starve each other (README).

    The cache keeps every compiled program, however small and quick to compile: a JAX chapter
    compiles hundreds of small eager programs, and a second run loads them from disk instead
    (``bench/book.py``; numbers in the README). It has no size limit: with one, JAX reads every
    entry of the folder before each write (``jax/_src/lru_cache.py``; ``bench/jax_cache_limit.py``
    measured 1.18x the uncached time in an empty folder and 1.49x in a filled one), and it needs
    the ``filelock`` package."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    env = dict(os.environ if base is None else base)
    env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if jobs > 1:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    if env.get("JAX_ENABLE_COMPILATION_CACHE", "").lower() not in ("0", "false"):
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(jax_cache_dir(env)))
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
    return env


def info() -> str:
    """Return a report of the Keras version, the backend and its version, and the devices."""
    import kdl

    keras = kdl._import_keras()

    lines = [
        f"kdl      {kdl.__version__}",
        f"keras    {keras.__version__}",
        f"backend  {keras.backend.backend()} {kdl.backend_version()}",
        f"device   {kdl.default_device()}",
        f"python   {sys.version.split()[0]}",
    ]
    return "\n".join(lines)


def find_chapters(names: list[str], folder: Path = CHAPTERS_DIR) -> list[Path]:
    """Resolve chapter arguments ('03', '03_optimization', a path) to notebook paths in ``folder``
    (default: the clone's chapters/), in order; exit with a message naming ``folder`` when it holds
    no chapters (NN_slug.ipynb)."""
    available = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not available and not all(Path(n).suffix == ".ipynb" for n in names or ["-"]):
        raise SystemExit(f"kdl: no chapters (NN_slug.ipynb) in {Path(folder).resolve()}; "
                         "pass the folder that holds them with --chapters DIR")
    if not names:
        return available
    chosen = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path.resolve())
            continue
        matches = [p for p in available if p.stem == name or p.stem.startswith(f"{name}_")]
        if len(matches) != 1:
            known = ", ".join(p.stem for p in available) or "none"
            raise SystemExit(f"kdl run: unknown chapter {name!r}; chapters are: {known}")
        chosen.append(matches[0])
    return chosen


def _device_in_kernel(client) -> str:
    """Ask the running kernel which device Keras uses (empty string when it cannot say)."""
    import nbformat

    cell = nbformat.v4.new_code_cell("import kdl; print(kdl.default_device())")
    # nbclient stores an executed cell at its index in the notebook: run the probe as an extra last
    # cell and take it out again, so that no chapter cell is replaced.
    client.nb.cells.append(cell)
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
        return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout").strip()
    except Exception:  # the report still matters more than the device name
        return ""
    finally:
        client.nb.cells.pop()


def run_chapter(path: Path, backend: str, out_dir: Path, timeout: int, jobs: int = 1) -> dict:
    """Execute one chapter in a fresh kernel on ``backend`` (one of ``jobs`` kernels running at a
    time); return its report entry."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    entry = {"chapter": path.stem, "backend": backend, "device": "", "status": "passed",
             "seconds": 0.0, "jobs": jobs, "failed_cell": None, "error": None}
    start = time.perf_counter()
    # Library logs written to file descriptor 2 by C++ code (TensorFlow's absl start-up lines, which
    # TF_CPP_MIN_LOG_LEVEL no longer silences in TF 2.21) are not part of the chapter: the kernel
    # does not capture them into the notebook, and its own stdout and stderr go to a log file
    # beside it, not the console.
    # Python warnings still reach the notebook as stderr outputs (the site hides those).
    client.extra_arguments = ["--IPKernelApp.capture_fd_output=False"]
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / f"{path.stem}.kernel.log"
    try:
        with open(log_path, "wb") as log, client.setup_kernel(
                stdout=log, stderr=log, env=kernel_env(backend, jobs=jobs)):
            for index, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, index)
                except nbclient.exceptions.CellExecutionError as err:
                    entry["status"] = "failed"
                    entry["failed_cell"] = index
                    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                    entry["error"] = f"cell {index} ({first[:60]}): {err.ename}: {err.evalue}"
                    break
            entry["seconds"] = round(time.perf_counter() - start, 1)
            entry["device"] = _device_in_kernel(client)
    except Exception as err:  # kernel died or timed out: its log may say why
        entry.update(status="failed", error=f"{type(err).__name__}: {err} (kernel log: {log_path})")
        entry["seconds"] = round(time.perf_counter() - start, 1)
    nbformat.write(nb, out_dir / path.name)
    return entry


def write_report(entries: list[dict], build: Path) -> str:
    """Merge entries into _build/report.json (one row per chapter and backend) and render it."""
    report_json = build / "report.json"
    rows = json.loads(report_json.read_text()) if report_json.exists() else []
    fresh = {(e["chapter"], e["backend"]) for e in entries}
    rows = [r for r in rows if (r["chapter"], r["backend"]) not in fresh] + entries
    rows.sort(key=lambda r: (r["chapter"], BACKENDS.index(r["backend"])))
    report_json.write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| chapter | backend | device | status | seconds | jobs | failing cell |",
             "|---|---|---|---|---:|---:|---|"]
    for r in rows:  # jobs: kernels running at once (rows from before --jobs existed ran alone)
        lines.append(f"| {r['chapter']} | {r['backend']} | {r['device']} | {r['status']} | "
                     f"{r['seconds']:.1f} | {r.get('jobs', 1)} | {r['error'] or ''} |")
    text = "\n".join(lines) + "\n"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (build / "report.md").write_text(f"# kdl book report ({stamp})\n\n{text}")
    return text


def run(names: list[str], backend: str, build: Path, timeout: int, html: bool = True,
        folder: Path = CHAPTERS_DIR, jobs: int = 1) -> int:
    """Execute the chapters on ``backend`` in ``jobs`` kernels at a time, write the report, build
    the site; return the exit status (1 when a chapter or the site failed)."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise SystemExit(f"kdl run: --jobs must be a positive integer, got {jobs!r}")
    chapters = find_chapters(names, folder)
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError as error:
        raise SystemExit(f"kdl run: {error.name} is not installed; install kdl's book extra "
                         "(pip install \"kdl[book]\"), which runs and renders the chapters") from None
    build.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []

    def report(entry: dict, named: bool = True) -> None:
        entries.append(entry)
        left = len(chapters) - len(entries)
        name = f"[{len(entries)}/{len(chapters)}] {entry['chapter']} on {backend}: " if named else ""
        print(f"{name}{entry['status']} in {entry['seconds']:.1f} s"
              + (f"  ({left} left)" if left else ""), flush=True)
        if entry["error"]:
            print(f"    {entry['error']}", flush=True)

    start = time.perf_counter()
    if jobs == 1:  # name each chapter as it starts
        for number, path in enumerate(chapters, start=1):
            print(f"[{number}/{len(chapters)}] {path.stem} on {backend} ...", end=" ", flush=True)
            report(run_chapter(path, backend, build / backend, timeout), named=False)
    else:  # chapters finish out of order: one line for each as it finishes
        # Each chapter runs in its own kernel process; the threads here only wait on them.
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_chapter, p, backend, build / backend, timeout, jobs)
                       for p in chapters]
            for future in as_completed(futures):
                report(future.result())
    wall = time.perf_counter() - start
    write_report(entries, build)
    failed = [e["chapter"] for e in entries if e["status"] != "passed"]
    total = sum(e["seconds"] for e in entries)
    print(f"{len(entries) - len(failed)} of {len(entries)} chapters passed on {backend} "
          f"in {wall:.1f} s wall ({total:.1f} s of chapter time, {jobs} job{'s' * (jobs > 1)}); "
          f"report: {build / 'report.md'}")
    site_failed = build_book(build, backend) if html else 0
    return 1 if failed or site_failed else 0


def build_book(build: Path, backend: str) -> int:
    """Build the site from the executed notebooks in ``build/<backend>/`` and print its index."""
    from kdl.book import build_site

    try:
        index = build_site(build, backend)
    except Exception as err:  # e.g. the book extra is not installed: the report still stands
        print(f"kdl run: the site was not built: {type(err).__name__}: {err}")
        return 1
    print(f"book: {index}")
    return 0


def lab(backend: str, folder: Path, jupyter_args: list[str]) -> int:
    """Start JupyterLab on the chapters in ``folder`` with :func:`kernel_env` on ``backend`` (and
    inline plots unless ``MPLBACKEND`` is set); return its exit status when it stops."""
    find_chapters([], folder)  # a clear error when the folder holds no chapters
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        raise SystemExit("kdl lab: JupyterLab is not installed here; install kdl's book extra "
                         "(pip install \"kdl[book]\") or run `make lab` in the clone") from None
    env = kernel_env(backend)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(folder).resolve()}",
           *root, *jupyter_args]
    print(f"kdl lab: JupyterLab on {Path(folder).resolve()}, backend {backend} (Ctrl-C stops it)",
          flush=True)
    try:
        return subprocess.call(cmd, cwd=folder, env=env)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdl", description="The kdl course kit.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="Keras version, backend and its version, device")
    p_info.add_argument("--backend", choices=BACKENDS, help="default: $KERAS_BACKEND")
    p_run = sub.add_parser("run", help="execute chapters and write the report")
    p_run.add_argument("chapters", nargs="*", help="e.g. 00 03_optimization (default: all)")
    p_run.add_argument("--backend", choices=BACKENDS,
                       default=os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND)
    p_run.add_argument("--chapters", dest="chapters_dir", type=Path, default=CHAPTERS_DIR,
                       help="folder of the chapter notebooks (default: the clone's chapters/)")
    p_run.add_argument("--build-dir", type=Path, default=BUILD_DIR,
                       help="where the executed notebooks, report and site go (default: the "
                            "clone's _build/; ./_build for an installed kdl)")
    p_run.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p_run.add_argument("--html-only", action="store_true",
                       help="rebuild only the site, from the notebooks executed on --backend")
    p_run.add_argument("--no-html", action="store_true", help="execute and report, build no site")
    p_run.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                       help="chapters executed at a time, each in its own kernel (default: "
                            f"{DEFAULT_JOBS} here; --jobs 1 for undisturbed per-chapter seconds)")
    p_lab = sub.add_parser("lab", help="JupyterLab on the chapters (other options go to Jupyter)")
    p_lab.add_argument("--backend", choices=BACKENDS,
                       default=os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND)
    p_lab.add_argument("--chapters", dest="chapters_dir", type=Path, default=CHAPTERS_DIR,
                       help="folder of the chapter notebooks (default: the clone's chapters/)")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "lab":
        return lab(args.backend, args.chapters_dir, extra)
    if args.command == "info":
        if args.backend and args.backend != os.environ.get("KERAS_BACKEND"):
            # The backend is fixed when keras is imported: ask a fresh interpreter.
            env = {**os.environ, "KERAS_BACKEND": args.backend}
            return subprocess.call([sys.executable, "-m", "kdl", "info"], env=env)
        try:
            print(info())
        except ModuleNotFoundError as error:  # the backend's library is missing: say so, no traceback
            raise SystemExit(str(error)) from None
        return 0
    args.build_dir = args.build_dir.resolve()  # printed paths a reader can open from anywhere
    if args.html_only:
        return build_book(args.build_dir, args.backend)
    return run(args.chapters, args.backend, args.build_dir, args.timeout, html=not args.no_html,
               folder=args.chapters_dir, jobs=args.jobs)


if __name__ == "__main__":
    sys.exit(main())
