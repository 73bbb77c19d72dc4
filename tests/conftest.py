"""Session fixtures: one tiny real sweep, run once and shared read-only by the sweep and analysis tests."""

from __future__ import annotations

import pytest

from tests.helpers import Stores


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Stores:
    stores = Stores(tmp_path_factory.mktemp("tiny_sweep"))
    assert stores.run() == 0
    return stores
