"""An installed kdl works outside the repository: the built wheel and sdist carry the data files,
and the site's configuration, and a wheel installed into a throw-away environment loads every
dataset and runs ``kdl info`` from a directory that is not the clone, where its ``kdl run`` executes
a chapter from a folder given on the command line into ``./_build`` and builds the site there (and
names the folder when it holds no chapters).

The throw-away environment is a fresh venv (no pip of its own, no access to the clone) into which
this interpreter's pip installs only the wheel; the heavy dependencies (Keras, a backend, pandas)
come from this interpreter's site-packages through a ``.pth`` line, appended after the venv's own
site-packages, so the wheel's ``kdl`` is the one imported and nothing is downloaded or rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

from kdl.datasets import SHA256

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "kdl", "data", "book")

SCRIPT = r"""
import hashlib, pathlib, sys
import kdl, kdl.datasets as d
assert "/kdl-venv/" in kdl.__file__, kdl.__file__  # the wheel's kdl, not the clone's
folder = d.data_dir()
assert folder == pathlib.Path(kdl.__file__).parent / "_data", folder
for name, digest in d.SHA256.items():
    assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
(x, _), _ = d.load_fashion_mnist_small()
(m, _), _ = d.load_basic_motions()
print("loaded", x.shape, m.shape, d.load_fine_food_reviews().shape, d.load_nyc_weather().shape)
"""


def _build(tmp_path: Path) -> Path:
    """Copy the files a build reads into ``tmp_path/src`` (so no build/ or egg-info lands in the
    clone) and build the wheel and the sdist there; return the dist folder."""
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=ignore)
        else:
            shutil.copy(source, src / name)
    dist = tmp_path / "dist"
    for hook in ("build_wheel", "build_sdist"):  # one process each: setuptools keeps state
        code = f"import sys; from setuptools import build_meta as b; print(b.{hook}(sys.argv[1]))"
        done = subprocess.run([sys.executable, "-c", code, str(dist)], cwd=src,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
    return dist


def test_wheel_and_sdist_carry_the_data_and_an_installed_kdl_loads_it_anywhere(tmp_path):
    dist = _build(tmp_path)
    (wheel,) = dist.glob("kdl-*.whl")
    (sdist,) = dist.glob("kdl-*.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {f"kdl/_data/{name}" for name in SHA256} | {"kdl/_data/SOURCES.md"} <= in_wheel
    assert not [n for n in in_wheel if n.startswith("data/")], "data/ must ship as kdl/_data/"
    book = {"kdl/_book/conf.py", "kdl/_book/intro.md", "kdl/_book/static/kdl.css"}
    assert book <= in_wheel, sorted(n for n in in_wheel if "_book" in n)
    assert not [n for n in in_wheel if n.endswith(".png")], "the README's screenshots stay out"
    with tarfile.open(sdist) as archive:
        in_sdist = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {f"data/{name}" for name in SHA256} | {"book/conf.py", "book/intro.md"} <= in_sdist

    venv = tmp_path / "kdl-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-index", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=180)
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "zz_kdl_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    elsewhere = tmp_path / "student_project"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KDL_DATA_DIR")}
    env.setdefault("KERAS_BACKEND", "torch")
    loaded = subprocess.run([str(python), "-c", SCRIPT], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-3000:]
    assert "loaded (4000, 28, 28) (40, 100, 6) (5000, 4) (26190, 11)" in loaded.stdout

    info = subprocess.run([str(venv / "bin" / "kdl"), "info"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert info.returncode == 0, info.stderr[-3000:]
    assert f"backend  {env['KERAS_BACKEND']}" in info.stdout, info.stdout

    # An instructor's `kdl run` from the installed package: no clone, chapters from a given folder.
    course = elsewhere / "course"
    course.mkdir()
    nb = {"cells": [{"cell_type": "markdown", "id": "m0", "metadata": {}, "source": "# 01 · Mine"},
                    {"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
                     "outputs": [], "source": "import kdl\nprint(kdl.__file__)"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (course / "01_mine.ipynb").write_text(json.dumps(nb))
    kdl_cmd = str(venv / "bin" / "kdl")
    no_chapters = subprocess.run([kdl_cmd, "run", "--no-html"], cwd=elsewhere, env=env,
                                 capture_output=True, text=True, timeout=120)
    assert no_chapters.returncode != 0 and "no chapters (NN_slug.ipynb) in" in no_chapters.stderr
    ran = subprocess.run([kdl_cmd, "run", "--chapters", str(course)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    build = elsewhere / "_build"  # the current directory's, not site-packages
    executed = json.loads((build / env["KERAS_BACKEND"] / "01_mine.ipynb").read_text())
    assert "/kdl-venv/" in "".join(executed["cells"][1]["outputs"][0]["text"])  # the wheel's kdl
    # ... and builds the site with the configuration shipped in the wheel (kdl/_book/).
    assert f"book: {build / 'html' / 'index.html'}" in ran.stdout, ran.stdout[-2000:]
    page = (build / "html" / "01_mine.html").read_text(encoding="utf-8")
    assert "01 · Mine" in page and "kdl-venv" in page
    assert "_static/kdl.css" in page and (build / "html" / "_static" / "kdl.css").is_file()
