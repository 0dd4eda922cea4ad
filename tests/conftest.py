"""Shared fixtures: the authors' data folder (../shared/data) when present."""

from __future__ import annotations

import pytest

from chaosrnn_utils.data import find_empirical


@pytest.fixture
def authors_file():
    """Return a loader that skips the test when an authors' file is not available."""

    def need(name: str):
        path = find_empirical(name)
        if path is None:
            pytest.skip(f"authors' file for {name!r} not available (../shared/data)")
        return path

    return need
