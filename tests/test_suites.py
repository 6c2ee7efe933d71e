"""The suite registry: suites are found by module name."""

from __future__ import annotations

import pytest

from xvol.errors import InvalidArgumentError
from xvol.verification.suites import available, load


def test_registry_lists_the_fence_suite_and_loads_it() -> None:
    assert "fence" in available()
    module = load("fence")
    assert module.NAME == "fence" and callable(module.run)


def test_unknown_suite_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError, match="no suite"):
        load("nonexistent")
