"""Every rotator and store writer loads by its registry name and names itself the same."""

from __future__ import annotations

import pytest

from keyguard.rotation.rotators import ORDER, ROTATORS
from keyguard.rotation.stores import STORES
from keyguard.sources import SOURCES


@pytest.mark.parametrize("name", ROTATORS.names())
def test_rotator_loads_and_is_named_after_its_source(name: str) -> None:
    cls = ROTATORS.load(name)
    assert cls.name == name
    assert name in SOURCES.names()  # cleanups find the old key through this source
    assert cls.final_steps


@pytest.mark.parametrize("name", STORES.names())
def test_store_writer_loads_and_matches_a_source(name: str) -> None:
    assert STORES.load(name).name == name
    assert name in SOURCES.names()


def test_order_names_registered_rotators() -> None:
    assert set(ORDER) <= set(ROTATORS.names())
