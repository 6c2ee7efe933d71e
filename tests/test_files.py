"""The repository's file interface over a write-anywhere volume, local member access, and the
argument checks of member calls."""

from __future__ import annotations

import pytest

from xvol.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from xvol.reference.repository.files import LocalMembers, VolumeFiles, dispatch, int_arg
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.volume.volume import Volume


def _files() -> tuple[VolumeFiles, Aggregate]:
    aggregate = Aggregate.create_in_memory("4", 3, 1024)
    return VolumeFiles(Volume.create(aggregate.create_space("v", 128), "v")), aggregate


def test_volume_files_do_what_the_volume_does_and_persist_at_checkpoints() -> None:
    files, aggregate = _files()
    files.mkdir("/d")
    files.create("/d/f")
    files.write("/d/f", 3, b"abc")
    assert files.read("/d/f", 0, 10) == b"\x00\x00\x00abc"
    assert files.stat("/d/f").size == 6 and files.stat("/d").is_dir
    files.rename("/d/f", "/g")
    assert files.readdir("/") == ["d", "g"] and files.exists("/g")
    free = files.free_bytes()
    files.write("/g", 0, b"x" * 40000)
    assert files.free_bytes() < free
    files.checkpoint()
    reopened = VolumeFiles(Volume.open(aggregate.space("v")))
    assert reopened.read("/g", 0, 3) == b"xxx"
    with pytest.raises(AlreadyExistsError):
        files.create("/g")
    files.truncate("/g", 1)
    files.unlink("/g")
    files.rmdir("/d")
    assert files.readdir("/") == []


def test_local_members_and_dispatch_refuse_unknown_names_and_bad_arguments() -> None:
    with pytest.raises(NotFoundError):
        LocalMembers().call("DC1", "read", {})
    with pytest.raises(NotFoundError):
        LocalMembers().ping(["NS"])
    table = {"m": lambda args, payload: (int_arg(args, "n", 0, 5), b"")}
    assert dispatch(table, "m", {"n": 3}, b"", "X") == (3, b"")
    for args in ({}, {"n": 9}, {"n": "3"}, {"n": True}):
        with pytest.raises(InvalidArgumentError):
            dispatch(table, "m", args, b"", "X")
    with pytest.raises(InvalidArgumentError):
        dispatch(table, "nope", {}, b"", "X")
