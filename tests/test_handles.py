"""Object handles: encoding round-trips, and forged, malformed and foreign handles are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvol.errors import InvalidArgumentError, PermissionDeniedError
from xvol.reference.repository.handles import (
    MAX_SERIAL,
    ForeignObjectError,
    ForgedHandleError,
    HandleCodec,
    MalformedHandleError,
    ObjectHandle,
    format_goid,
    goid_repository,
    goid_serial,
    make_goid,
    parse_goid,
)

KEY = HandleCodec.derive_key(7, 3)
CODEC = HandleCodec(3, KEY)

handles = st.builds(
    lambda serial, loc, pol: ObjectHandle(make_goid(3, serial), loc, pol),
    st.integers(1, MAX_SERIAL),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=200, deadline=None)
@given(handles)
def test_encode_then_decode_returns_the_same_handle(handle: ObjectHandle) -> None:
    assert CODEC.decode(CODEC.encode(handle)) == handle


@settings(max_examples=200, deadline=None)
@given(handles, st.integers(0, 47), st.sampled_from("0123456789abcdef"))
def test_any_altered_character_is_refused(handle: ObjectHandle, position: int, char: str) -> None:
    text = CODEC.encode(handle)
    index = [i for i, c in enumerate(text) if c != "-"][position]
    altered = text[:index] + char + text[index + 1 :]
    if altered == text:
        return
    with pytest.raises((ForgedHandleError, ForeignObjectError, MalformedHandleError)):
        CODEC.decode(altered)


def test_a_handle_of_another_repository_is_foreign() -> None:
    other = HandleCodec(4, HandleCodec.derive_key(7, 4))
    text = other.encode(ObjectHandle(make_goid(4, 1), 1, 0))
    with pytest.raises(ForeignObjectError):
        CODEC.decode(text)
    assert issubclass(ForeignObjectError, PermissionDeniedError)


def test_a_key_from_another_cluster_makes_a_forged_handle() -> None:
    stranger = HandleCodec(3, HandleCodec.derive_key(8, 3))
    with pytest.raises(ForgedHandleError):
        CODEC.decode(stranger.encode(ObjectHandle(make_goid(3, 9), 2, 0)))


@pytest.mark.parametrize(
    "text", ["", "x", "0" * 51, "00000000000000z1-00000001-00000000-0000000000000000", 42]
)
def test_malformed_handles_are_invalid_arguments(text: object) -> None:
    with pytest.raises(MalformedHandleError):
        CODEC.decode(text)  # type: ignore[arg-type]
    assert issubclass(MalformedHandleError, InvalidArgumentError)


def test_goid_layout_and_text_round_trip() -> None:
    goid = make_goid(5, 77)
    assert (goid_repository(goid), goid_serial(goid)) == (5, 77)
    assert parse_goid(format_goid(goid)) == goid
    for bad in ("", "0" * 16, "G" * 16, "0000000000000001"):
        with pytest.raises(MalformedHandleError):
            parse_goid(bad)
    with pytest.raises(InvalidArgumentError):
        make_goid(0, 1)
    with pytest.raises(MalformedHandleError):
        ObjectHandle(make_goid(1, 1), -1, 0)
