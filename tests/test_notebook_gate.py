"""Gates on the committed chapters: normalised, conventional, backend-neutral."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from normalise_notebooks import CHECK_TAG, dumps, normalise  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
FORBIDDEN = re.compile(
    r"^\s*(import|from)\s+(tensorflow|jax|torch)\b|KERAS_BACKEND|set_backend|/device:|cuda",
    re.MULTILINE,
)


def test_there_are_chapters():
    assert CHAPTERS, "chapters/ holds no notebooks"
    for path in CHAPTERS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_notebook_is_normalised(path):
    text = path.read_text(encoding="utf-8")
    assert dumps(normalise(json.loads(text))) == text, (
        f"{path.name} is not normalised: run `python tools/normalise_notebooks.py {path}`"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_follows_the_conventions(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    # Setup cell: seeds and prints backend, versions, device.
    assert "kdl.setup(" in "".join(code[0]["source"]), "the first code cell must call kdl.setup"
    for heading in ("Misconceptions", "Exercises", "Glossary"):
        assert re.search(rf"^#+ .*{heading}", markdown, re.MULTILINE), f"no '{heading}' section"
    assert re.search(r"learning goals|you will", markdown, re.IGNORECASE), "no learning goals"
    solutions = [c for c in code if "solution" in c.get("metadata", {}).get("tags", [])]
    assert len(solutions) >= 3, f"{len(solutions)} solution cells, need at least 3"
    assert any(CHECK_TAG in c.get("metadata", {}).get("tags", []) for c in code), (
        "no nbval-check-output cell"
    )
    for cell in code:
        source = "".join(cell["source"])
        assert not FORBIDDEN.search(source), f"backend-specific code in a cell:\n{source[:300]}"
    # Untagged cells carry no outputs (also enforced by normalisation; named here for clarity).
    for cell in code:
        if CHECK_TAG not in cell.get("metadata", {}).get("tags", []):
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_check_cells_compare_printed_text_only(path):
    # A figure's output depends on the matplotlib backend (inline in Jupyter, none under Agg, as in
    # `make test`) and a displayed tensor's repr on the Keras backend: tagged cells print plain text.
    nb = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        if CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            kinds = [(o["output_type"], o.get("name")) for o in cell["outputs"]]
            assert kinds and set(kinds) == {("stream", "stdout")}, (
                f"cell {index}: a check cell must only print to stdout, stored outputs are {kinds}"
            )


def test_normaliser_clears_untagged_outputs_and_keeps_tagged_ones():
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": 3, "id": "x", "metadata": {"collapsed": True},
             "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}], "source": "1"},
            {"cell_type": "code", "execution_count": 4, "id": "y",
             "metadata": {"tags": [CHECK_TAG]},
             "outputs": [{"output_type": "execute_result", "execution_count": 4, "metadata": {},
                          "data": {"text/plain": "(2, 3)"}}], "source": "s.shape"},
        ],
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {}}, "nbformat": 4,
        "nbformat_minor": 4,
    }
    out = normalise(nb)
    first, second = out["cells"]
    assert first["outputs"] == [] and first["execution_count"] is None and first["metadata"] == {}
    assert second["outputs"][0]["data"]["text/plain"] == ["(2, 3)"]
    # nbval compares only cells with an execution count: tagged ones keep a deterministic one.
    assert second["execution_count"] == 2 and second["outputs"][0]["execution_count"] == 2
    assert "widgets" not in out["metadata"] and out["nbformat_minor"] == 5
    assert normalise(out) == out  # idempotent
