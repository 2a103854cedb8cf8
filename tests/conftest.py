"""Shared fixtures. The suite runs once per backend, in a process started with KERAS_BACKEND set."""

from __future__ import annotations

import os

import keras
import pytest

import kdl

BACKENDS = ("tensorflow", "jax", "torch")


def pytest_report_header(config):
    return f"KERAS_BACKEND={keras.backend.backend()} (keras {keras.__version__})"


@pytest.fixture
def backend() -> str:
    """The Keras backend this test process runs on."""
    return keras.backend.backend()


@pytest.fixture(autouse=True)
def _seed_and_reset():
    """Every test starts from the same seed and a clean Keras name scope."""
    kdl.set_random_seed(0)
    keras.backend.clear_session(free_memory=False)
    yield


assert os.environ.get("KERAS_BACKEND", keras.backend.backend()) == keras.backend.backend()
