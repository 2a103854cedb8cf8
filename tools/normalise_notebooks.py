"""Normalise chapter notebooks so that what is committed is clean and diffs are small.

A normalised notebook:
- has no outputs and ``execution_count: null`` in every code cell, except cells tagged
  ``nbval-check-output``, which keep their outputs (the reference nbval compares against, which
  must be identical on every backend) and, as nbval requires of a cell with reference outputs, an
  execution count: the cell's 1-based position among the code cells, so it is deterministic;
- keeps only the ``tags`` key of cell metadata, and only ``kernelspec`` and ``language_info.name``
  of the notebook metadata (the kernel is the generic ``python3``; the backend is chosen outside);
- has deterministic cell ids (``cell-000``, ``cell-001``, ...), nbformat 4.5, and is written with
  one-space indentation, sorted keys and a final newline, as Jupyter itself writes notebooks.

Usage::

    python tools/normalise_notebooks.py chapters/*.ipynb            # rewrite in place
    python tools/normalise_notebooks.py --check chapters/*.ipynb    # exit 1 if any would change
    python tools/normalise_notebooks.py --execute chapters/00_*.ipynb
        # run the notebook first (on $KERAS_BACKEND) to refresh the outputs of the tagged cells
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

CHECK_TAG = "nbval-check-output"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _source_text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _split_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _clean_output(output: dict, count: int) -> dict:
    out = copy.deepcopy(output)
    if "execution_count" in out:
        out["execution_count"] = count
    if out.get("output_type") == "stream":
        out["text"] = _split_lines(_source_text(out.get("text", "")))
    for key, value in out.get("data", {}).items():
        if key.startswith("text/") and isinstance(value, (str, list)):
            out["data"][key] = _split_lines(_source_text(value))
    return out


def normalise(nb: dict) -> dict:
    """Return the normalised copy of a notebook given as a JSON dict."""
    cells = []
    code_cells = 0
    for index, cell in enumerate(nb.get("cells", [])):
        tags = list(dict.fromkeys(cell.get("metadata", {}).get("tags", [])))
        new: dict[str, Any] = {
            "cell_type": cell["cell_type"],
            "id": f"cell-{index:03d}",
            "metadata": {"tags": tags} if tags else {},
            "source": _split_lines(_source_text(cell.get("source", "")).rstrip("\n")),
        }
        if cell["cell_type"] == "code":
            code_cells += 1
            outputs = cell.get("outputs", []) if CHECK_TAG in tags else []
            new["outputs"] = [_clean_output(o, code_cells) for o in outputs]
            new["execution_count"] = code_cells if outputs else None
        elif "attachments" in cell:
            new["attachments"] = cell["attachments"]
        cells.append(new)
    return {
        "cells": cells,
        "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def dumps(nb: dict) -> str:
    """Serialise a notebook the way it is committed."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def execute(nb: dict, path: Path, timeout: int = 600) -> dict:
    """Execute a notebook in a fresh kernel (backend from $KERAS_BACKEND), cwd = its folder."""
    import nbclient
    import nbformat

    node = nbformat.reads(json.dumps(nb), as_version=4)  # joins list sources into strings
    client = nbclient.NotebookClient(
        node, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return json.loads(nbformat.writes(node))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report, do not rewrite")
    parser.add_argument("--execute", action="store_true", help="execute before normalising")
    args = parser.parse_args(argv)
    changed = []
    for path in args.notebooks:
        original = path.read_text(encoding="utf-8")
        nb = json.loads(original)
        if args.execute:
            nb = execute(nb, path)
        text = dumps(normalise(nb))
        if text != original:
            changed.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    for path in changed:
        print(f"{'not normalised' if args.check else 'normalised'}: {path}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
