"""Sphinx configuration of the rendered book (myst-nb + sphinx-book-theme, MathJax shipped locally).

``kdl.book.build_site`` stages the executed notebooks, ``index.md``, ``glossary.md`` and
``_chapters.json`` (each chapter's backend, device, status, seconds from ``_build/report.json``)
into a source folder and builds it with this configuration; nothing here executes a notebook.
"""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

from docutils import nodes

project = "kdl"
author = "the kdl authors"
copyright = "the kdl authors, MIT license"
html_title = "kdl"

extensions = ["myst_nb"]
exclude_patterns = ["_chapters.json", "**.ipynb_checkpoints"]

# The notebooks arrive executed by `kdl run`: render them as they are.
nb_execution_mode = "off"
nb_output_stderr = "remove"  # warnings and library logs are not part of the text
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widgets in the book; the default would load require.js from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]

# MathJax 3 from the sphinx-mathjax-offline wheel, copied next to the pages (no CDN).
mathjax_path = "mathjax/tex-chtml.js"
_MATHJAX = Path(str(metadata.distribution("sphinx-mathjax-offline").locate_file(
    "sphinx-mathjax-offline/static/mathjax")))
_MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui")

html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "navbar_persistent": [],  # pydata 0.20 adds a top bar holding only a second search box
}
html_sourcelink_suffix = ""  # `_sources/NN_x.ipynb` is the executed notebook, downloadable as is
html_last_updated_fmt = "%Y-%m-%d %H:%M"
html_css_files = ["kdl.css"]
html_static_path = [str(Path(__file__).with_name("static"))]

SOLUTION = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}


def _chapters(app) -> dict:
    return json.loads((Path(app.srcdir) / "_chapters.json").read_text(encoding="utf-8"))


def fold_solutions(app, docname: str, source: list[str]) -> None:
    """Fold each cell tagged `solution` behind "Show solution" (myst-nb's `hide-cell`)."""
    if docname not in _chapters(app):
        return
    nb = json.loads(source[0])
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            cell["metadata"]["tags"] = [*tags, "hide-cell"]
            cell["metadata"]["mystnb"] = {**cell["metadata"].get("mystnb", {}), **SOLUTION}
    source[0] = json.dumps(nb)


def add_run_banner(app, doctree) -> None:
    """Under the chapter's title: backend, device, seconds, a download link; where a run failed."""
    info = _chapters(app).get(app.env.docname)
    if info is None:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    link = f'<a class="reference download" href="_sources/{info["file"]}">executed notebook</a>'
    html = (f'<p class="kdl-run">Executed on <b>{info["backend"]}</b> · device '
            f'<b>{info["device"] or "unknown"}</b> · {info["seconds"]:.1f} s · {link}</p>')
    if info["status"] != "passed":
        cell = info.get("failed_cell")
        title = ("This chapter did not finish" if cell is None  # the kernel died or timed out
                 else f'This chapter failed at <a href="#failed-cell">cell {cell}</a>')
        html += (f'<div class="admonition error kdl-failed"><p class="admonition-title">{title}</p>'
                 f'<p>{_escape(info["error"] or "")}</p>'
                 f'<p>Outputs stop there; the cells after it did not run.</p></div>')
        for node in doctree.findall(nodes.container):
            if node.get("nb_element") == "cell_code" and node.get("cell_index") == cell:
                node["ids"].append("failed-cell")
    section.insert(1, nodes.raw("", html, format="html"))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def copy_mathjax(app, exc) -> None:
    if exc is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        src, dst = _MATHJAX / part, target / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def setup(app):
    app.connect("source-read", fold_solutions)
    app.connect("doctree-read", add_run_banner)
    app.connect("build-finished", copy_mathjax)
