"""Shared fixtures: one torch thread, no downloads, and the authors' data folder
(../shared/data)."""

from __future__ import annotations

import pytest
import torch

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


@pytest.fixture(autouse=True, scope="session")
def _no_downloads():
    """The tests never download the authors' files (tests/test_fetch.py passes its own
    downloaders): a file in no local folder is missing, at once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHAOSRNN_OFFLINE", "1")
        yield


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """The tensors in the tests are tiny: intra-op threading only adds overhead and makes the
    last bits depend on the thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
