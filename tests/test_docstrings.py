"""Every ``Example:`` in a kdl docstring runs, on this backend, as a doctest."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import kdl

MODULES = sorted(
    m.name for m in pkgutil.iter_modules(kdl.__path__, prefix="kdl.") if m.name != "kdl.__main__"
) + ["kdl"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest(s) failed in {name}"
