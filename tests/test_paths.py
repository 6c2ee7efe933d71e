"""Namespace paths: normalisation, refusal of malformed names, and of paths that climb out of
the vserver's namespace."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError
from xvol.reference.repository.paths import (
    PathOutsideNamespaceError,
    is_within,
    normalise,
    parent_and_name,
    split_path,
)


def test_dots_and_slashes_are_resolved_lexically() -> None:
    assert normalise("/a//b/./c/../d/") == "/a/b/d"
    assert split_path("/") == ()
    assert parent_and_name("/a/b") == ("/a", "b")


@pytest.mark.parametrize("path", ["/..", "/a/../..", "/../etc/passwd"])
def test_climbing_above_the_root_is_refused(path: str) -> None:
    with pytest.raises(PathOutsideNamespaceError):
        split_path(path)


@pytest.mark.parametrize("path", ["", "a/b", "/a\x00b", "/" + "x" * 201, "/" + "a/" * 70])
def test_malformed_paths_are_invalid(path: str) -> None:
    with pytest.raises(InvalidArgumentError):
        split_path(path)
    with pytest.raises(InvalidArgumentError):
        split_path(42)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab.", min_size=1, max_size=3), max_size=6))
def test_normalised_paths_are_fixed_points_and_never_climb(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    try:
        canonical = normalise(path)
    except PathOutsideNamespaceError:
        return
    assert normalise(canonical) == canonical
    assert ".." not in canonical.split("/") and is_within(canonical, "/")
