"""The rendered book: an offline HTML site built from the executed notebooks.

``kdl run`` executes the chapters into ``_build/<backend>/`` and writes ``_build/report.json``;
:func:`build_site` then stages those notebooks with a generated ``index.md`` (the book's intro from
``book/intro.md`` and the chapter table from the report) and ``glossary.md`` (every chapter's
Glossary table merged, with links back) and builds ``_build/html/`` with Sphinx, myst-nb and the
configuration in ``book/conf.py``. Nothing is executed here, so a rebuild takes seconds.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path

# The site's configuration: the repository's book/, shipped inside the wheel as kdl/_book/ (like
# data/ as kdl/_data/), so an installed kdl builds the site of any folder of chapters.
_SHIPPED = Path(__file__).resolve().parent / "_book"
BOOK_DIR = _SHIPPED if _SHIPPED.is_dir() else Path(__file__).resolve().parent.parent / "book"
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
TABLE_MARK = "<!-- chapter table -->"  # where book/intro.md gets the chapter table


def chapter_title(nb: dict) -> str:
    """Return the text of the notebook's first level-1 heading ("02 · Losses, ...")."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^# +(.+)$", _source(cell), re.MULTILINE)
            if match:
                return match.group(1).strip()
    return ""


def glossary_rows(nb: dict) -> list[list[str]]:
    """Return the rows [English, 中文, definition] of the notebook's Glossary table."""
    for cell in nb["cells"]:
        text = _source(cell)
        if cell["cell_type"] == "markdown" and re.match(r"#+ +Glossary", text):
            lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
            rows = [[c.strip() for c in _CELL_SPLIT.split(line.strip().strip("|"))]
                    for line in lines[2:]]  # skip the header and the |---| line
            return [row[:3] for row in rows if len(row) >= 3]
    return []


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _stage(build: Path, backend: str, src: Path) -> list[dict]:
    """Write the Sphinx source folder ``src``; return one dict per staged chapter, in order."""
    report = build / "report.json"
    rows = json.loads(report.read_text()) if report.exists() else []
    runs = {r["chapter"]: r for r in rows if r["backend"] == backend}
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    chapters = []
    for path in sorted((build / backend).glob("[0-9][0-9]_*.ipynb")):
        run = runs.get(path.stem)
        if run is None:  # an executed notebook the report does not know: not from `kdl run`
            continue
        shutil.copy2(path, src / path.name)
        nb = json.loads(path.read_text(encoding="utf-8"))
        chapters.append({**run, "file": path.name, "title": chapter_title(nb) or path.stem,
                         "glossary": glossary_rows(nb)})
    (src / "_chapters.json").write_text(json.dumps(
        {c["chapter"]: {k: c[k] for k in ("file", "backend", "device", "status", "seconds",
                                           "failed_cell", "error")} for c in chapters}, indent=1))
    (src / "index.md").write_text(_index_page(chapters), encoding="utf-8")
    (src / "glossary.md").write_text(_glossary_page(chapters), encoding="utf-8")
    return chapters


def _index_page(chapters: list[dict]) -> str:
    table = ["## Chapters", "", "| chapter | status | backend | device | seconds |",
             "|---|---|---|---|---:|"]
    for c in chapters:
        status = c["status"] if c["status"] == "passed" else f"**{c['status']}**"
        table.append(f"| [{_cell(c['title'])}]({c['file']}) | {status} | {c['backend']} | "
                     f"{c['device'] or 'unknown'} | {c['seconds']:.1f} |")
    if not chapters:
        table.append("| no executed chapter yet: run `make book` | | | | |")
    intro = (BOOK_DIR / "intro.md").read_text(encoding="utf-8").rstrip()
    toctree = ["```{toctree}", ":hidden:", ":maxdepth: 1", "",
               *[c["chapter"] for c in chapters], "glossary", "```"]
    return intro.replace(TABLE_MARK, "\n".join(table)) + "\n\n" + "\n".join(toctree) + "\n"


def _glossary_page(chapters: list[dict]) -> str:
    lines = ["# Glossary · 术语表", "",
             "Every chapter's glossary in one table, sorted by the English term; the last column "
             "links to the chapter's own glossary.", "",
             "| English | 中文 | definition | chapter |", "|---|---|---|---|"]
    rows = [(*row, c) for c in chapters for row in c["glossary"]]
    rows.sort(key=lambda r: (_plain(r[0]), r[3]["chapter"]))
    for english, chinese, definition, c in rows:
        page = Path(c["file"]).with_suffix(".html").name
        number = c["chapter"].split("_", 1)[0]
        link = f'<a href="{page}#glossary" title="{_attr(c["title"])}">{number}</a>'
        lines.append(f"| {english} | {chinese} | {definition} | {link} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", r"\|")


def _plain(term: str) -> str:
    """The sort key of a glossary term: its letters without Markdown marks, lower case."""
    return re.sub(r"[`*_$\\]", "", term).lower()


def _attr(text: str) -> str:
    for char, entity in (("&", "&amp;"), ('"', "&quot;"), ("<", "&lt;"), ("|", "&#124;")):
        text = text.replace(char, entity)
    return text


def build_site(build: Path, backend: str) -> Path:
    """Build ``build/html/`` from ``build/<backend>/*.ipynb`` and the report; return index.html.

    Sphinx's warnings go to ``build/book-warnings.log``; its progress is not printed.
    """
    from sphinx.application import Sphinx
    from sphinx.util.console import nocolor

    src = build / "book-src"
    chapters = _stage(build, backend, src)
    out = build / "html"
    warnings = io.StringIO()
    nocolor()
    start = time.perf_counter()
    app = Sphinx(str(src), str(BOOK_DIR), str(out), str(build / ".doctrees"), "html",
                 status=None, warning=warnings, freshenv=True, verbosity=0)
    app.build(force_all=True)
    log = build / "book-warnings.log"
    log.write_text(warnings.getvalue())
    count = warnings.getvalue().count("WARNING")
    print(f"site: {len(chapters)} chapters from {build / backend} in "
          f"{time.perf_counter() - start:.1f} s"
          + (f"; {count} Sphinx warnings in {log}" if count else ""))
    return out / "index.html"
