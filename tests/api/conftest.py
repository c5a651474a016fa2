"""In-process API fixtures: the real app over a temporary data folder, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.api import Api, create_items, make_client


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with make_client(tmp_path) as client:
        yield Api(client)


@pytest.fixture
def collection(api: Api) -> str:
    return create_items(api)
