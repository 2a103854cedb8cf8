"""`python -m kdl`: info, and run's report on a passing and a failing notebook."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import nbformat

import kdl


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_setup_prints_backend_versions_and_device(capsys):
    assert kdl.setup(seed=3) is None  # printed, not returned: a setup cell shows the line once
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert f"backend {keras.backend.backend()} {kdl.backend_version()}" in line
    assert f"Keras {keras.__version__}" in line and "device " in line and line.endswith("seed 3")


def test_setup_seeds_the_backend_stream():
    kdl.setup(seed=7, quiet=True)
    a = keras.ops.convert_to_numpy(keras.random.normal((4,)))
    kdl.setup(seed=7, quiet=True)
    b = keras.ops.convert_to_numpy(keras.random.normal((4,)))
    assert (a == b).all()


def test_setup_rejects_a_bad_seed():
    import pytest

    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match=rf"seed={bad!r}"):
            kdl.setup(seed=bad)
        with pytest.raises(ValueError, match=rf"seed={bad!r}"):
            kdl.set_random_seed(bad)


def test_info_names_keras_backend_and_device():
    out = subprocess.run([sys.executable, "-m", "kdl", "info"], capture_output=True, text=True,
                         check=True).stdout
    assert f"keras    {keras.__version__}" in out
    assert f"backend  {keras.backend.backend()} " in out and "device   " in out


def test_a_missing_backend_library_gets_an_error_that_says_how_to_choose_another(tmp_path):
    # A student who installed kdl[jax] and did not set KERAS_BACKEND: Keras picks TensorFlow.
    # A finder placed first makes `import tensorflow` fail as it does when TensorFlow is not installed.
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)  # no keras.json there: Keras's default backend
    block = (
        "import sys\n"
        "class NoTensorFlow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tensorflow':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTensorFlow())\n"
    )
    scripts = {
        "kdl.setup": block + "import kdl; kdl.setup()",
        "kdl info": block + "import runpy; sys.argv = ['kdl', 'info']\nrunpy.run_module('kdl', run_name='__main__')",
    }
    for what, script in scripts.items():
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 1, (what, proc.stdout, proc.stderr)
        message = proc.stderr.strip().splitlines()[-1]
        assert "needs 'tensorflow', which is not installed (KERAS_BACKEND is not set" in message, what
        assert "export KERAS_BACKEND=jax" in message, what
    assert "Traceback" not in proc.stderr  # `kdl info` prints the message alone


def test_run_reports_each_chapter_and_names_the_failing_cell(tmp_path):
    backend = keras.backend.backend()
    good = _notebook(tmp_path / "01_good.ipynb",
                     f"import keras\nassert keras.backend.backend() == {backend!r}", "print(1 + 1)",
                     "import kdl\nkdl.setup(seed=0)")
    bad = _notebook(tmp_path / "02_bad.ipynb", "x = 1", "raise RuntimeError('broken on purpose')",
                    "print('never reached')")
    build = tmp_path / "_build"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a reader has it
    proc = subprocess.run(
        [sys.executable, "-m", "kdl", "run", str(bad), str(good), "--backend", backend,
         "--build-dir", str(build), "--no-html", "--jobs", "1"], capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[1/2] 02_bad" in proc.stdout and "[2/2] 01_good" in proc.stdout  # progress, not stopped
    rows = {r["chapter"]: r for r in json.loads((build / "report.json").read_text())}
    assert rows["01_good"]["status"] == "passed" and rows["01_good"]["backend"] == backend
    assert rows["02_bad"]["status"] == "failed" and rows["02_bad"]["failed_cell"] == 1
    assert "RuntimeError: broken on purpose" in rows["02_bad"]["error"]
    assert rows["01_good"]["device"]  # the kernel reported its device
    assert "02_bad" in (build / "report.md").read_text()
    executed = nbformat.read(build / backend / "01_good.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "2\n"
    # the setup cell shows kdl's one line and nothing else (no TensorFlow start-up logs on stderr)
    assert [o["name"] for o in executed.cells[2].outputs] == ["stdout"], executed.cells[2].outputs
    assert executed.cells[2].outputs[0]["text"].startswith("kdl ")
    assert (build / backend / "01_good.kernel.log").exists()  # the kernel's own output, not shown


def test_run_with_two_jobs_executes_chapters_side_by_side_one_report_row_each(tmp_path):
    backend = keras.backend.backend()
    # Each chapter waits until the other has started, so the run only finishes if both kernels
    # are alive at the same time; with one job at a time the first would time out.
    for me, other in (("01_left", "02_right"), ("02_right", "01_left")):
        _notebook(tmp_path / f"{me}.ipynb",
                  f"import pathlib, time\nhere = pathlib.Path({str(tmp_path)!r})\n"
                  f"(here / '{me}.started').touch()\n"
                  f"deadline = time.time() + 60\n"
                  f"while not (here / '{other}.started').exists():\n"
                  f"    assert time.time() < deadline, 'the other chapter never started'\n"
                  f"    time.sleep(0.1)\n"
                  f"import os; print(os.environ['KERAS_BACKEND'])")
    build = tmp_path / "_build"
    proc = subprocess.run(
        [sys.executable, "-m", "kdl", "run", "--chapters", str(tmp_path), "--backend", backend,
         "--build-dir", str(build), "--no-html", "--jobs", "2"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((build / "report.json").read_text())
    assert [(r["chapter"], r["backend"], r["status"]) for r in rows] == [
        ("01_left", backend, "passed"), ("02_right", backend, "passed")]
    for name in ("01_left", "02_right"):
        executed = nbformat.read(build / backend / f"{name}.ipynb", as_version=4)
        assert executed.cells[0].outputs[-1]["text"] == f"{backend}\n"
    assert "2 jobs" in proc.stdout and proc.stdout.count(f" on {backend}: passed") == 2
    assert [r["jobs"] for r in rows] == [2, 2] and "| 2 |" in (build / "report.md").read_text()


def test_run_rejects_a_bad_job_count_and_a_folder_without_chapters(tmp_path):
    for args, message in ((["--jobs", "0"], "--jobs must be a positive integer, got 0"),
                          (["--chapters", str(tmp_path)], f"no chapters (NN_slug.ipynb) in {tmp_path}")):
        proc = subprocess.run([sys.executable, "-m", "kdl", "run", "--no-html", *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_kernel_env_sets_the_backend_quiet_logs_and_the_jax_cache(tmp_path):
    from kdl.__main__ import kernel_env

    env = kernel_env("jax", {"HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert env["KERAS_BACKEND"] == "jax" and env["TF_CPP_MIN_LOG_LEVEL"] == "0"  # the caller's wins
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / ".cache" / "kdl" / "jax")
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    # no size limit: with one, JAX reads the whole cache folder on every write (README)
    assert "JAX_COMPILATION_CACHE_MAX_SIZE" not in env
    xdg = kernel_env("torch", {"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert xdg["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "xdg" / "kdl" / "jax")
    assert xdg["TF_CPP_MIN_LOG_LEVEL"] == "2"
    mine = kernel_env("jax", {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "mine")})
    assert mine["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "mine")
    off = kernel_env("jax", {"JAX_ENABLE_COMPILATION_CACHE": "false"})  # JAX's own switch
    assert "JAX_COMPILATION_CACHE_DIR" not in off and "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in off
    import pytest

    with pytest.raises(ValueError, match="got 'mxnet'"):
        kernel_env("mxnet")


def test_a_jax_kernel_of_kdl_run_writes_the_compilation_cache_and_reads_it_back(tmp_path):
    # On every pass of the matrix: the kernel is started with --backend jax whatever this process runs.
    _notebook(tmp_path / "01_jit.ipynb",
              "import keras\nprint(float(keras.ops.sum(keras.ops.exp(keras.ops.ones((3, 5))))))")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop("JAX_ENABLE_COMPILATION_CACHE", None)
    cache = tmp_path / "cache" / "kdl" / "jax"
    for run in ("cold", "warm"):
        proc = subprocess.run(
            [sys.executable, "-m", "kdl", "run", "--chapters", str(tmp_path), "--backend", "jax",
             "--no-html", "--jobs", "1", "--build-dir", str(tmp_path / run)],
            env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs = nbformat.read(tmp_path / run / "jax" / "01_jit.ipynb", as_version=4).cells[0].outputs
        assert [o.get("name") for o in outputs] == ["stdout"], outputs  # no cache warning on stderr
        assert abs(float(outputs[0]["text"]) - 15 * 2.718281828) < 1e-4  # the sum of 15 e's
        if run == "cold":
            written = {p.name: p.stat().st_mtime_ns for p in cache.glob("*-cache")}
            assert written, "the kernel wrote nothing into the compilation cache"
    # the warm run found every program it needed: it added none and rewrote none
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*-cache")} == written
