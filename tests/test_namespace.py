"""The namespace volume: directory entries point to redirector files (or carry the GOID
themselves); lookups, links, renames and directory operations behave like a file system whose
files hold object locators, in every locator mode."""

from __future__ import annotations

import pytest

from xvol.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, StateError
from xvol.reference.repository.files import VolumeFiles
from xvol.reference.repository.handles import make_goid
from xvol.reference.repository.namespace import (
    REDIRECTOR_BYTES,
    Locator,
    LocatorMode,
    NamespaceVolume,
)
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.volume.volume import Volume

G1, G2 = make_goid(2, 1), make_goid(2, 2)


def _ns(mode: LocatorMode) -> tuple[NamespaceVolume, Aggregate]:
    aggregate = Aggregate.create_in_memory("4", 3, 1024)
    files = VolumeFiles(Volume.create(aggregate.create_space("ns", 256), "ns"))
    return NamespaceVolume.format(files, mode, 2), aggregate


@pytest.mark.parametrize("mode", list(LocatorMode))
def test_links_lookups_renames_and_directories(mode: LocatorMode) -> None:
    ns, aggregate = _ns(mode)
    ns.mkdir("/d")
    ns.link("/d/a", Locator(G1, 3, 0))
    ns.link("/b", Locator(G2, 1, 0))
    assert ns.lookup("/d/a").goid == G1
    hint = ns.lookup("/d/a").location_id
    assert hint == (3 if mode is LocatorMode.REDIRECTOR_HANDLE else None)
    assert [(e.name, e.is_dir, e.goid) for e in ns.readdir("/")] == [
        ("b", False, G2),
        ("d", True, None),
    ]
    with pytest.raises(AlreadyExistsError):
        ns.link("/d", Locator(G1))
    with pytest.raises(AlreadyExistsError):
        ns.mkdir("/b")
    with pytest.raises(InvalidArgumentError):
        ns.lookup("/d")  # a directory is not an object
    with pytest.raises(InvalidArgumentError):
        ns.link("/b/c", Locator(G1))  # an object is not a directory
    with pytest.raises(NotFoundError):
        ns.lookup("/nope")
    ns.rename("/d", "/e")
    ns.rename("/b", "/e/b")
    with pytest.raises(InvalidArgumentError):
        ns.rename("/e", "/e/inside")
    with pytest.raises(StateError):
        ns.rmdir("/e")
    assert ns.walk() == [("/e/a", G1), ("/e/b", G2)]
    ns.files.checkpoint()
    again = NamespaceVolume.open(VolumeFiles(Volume.open(aggregate.space("ns"))))
    assert again.mode is mode and again.walk() == ns.walk()
    assert ns.unlink("/e/a").goid == G1 and ns.unlink("/e/b").goid == G2
    ns.rmdir("/e")
    assert ns.readdir("/") == [] and ns.stat("/").is_dir


def test_redirector_files_hold_the_locator_and_nothing_else() -> None:
    ns, _ = _ns(LocatorMode.REDIRECTOR_GOID)
    ns.link("/x", Locator(G1))
    assert ns.files.stat("/root/x").size == REDIRECTOR_BYTES
    raw = ns.files.read("/root/x", 0, REDIRECTOR_BYTES)
    assert raw[:4] == b"XRDR" and G1.to_bytes(8, "big") in raw


def test_entry_goid_mode_keeps_the_goid_in_the_directory_entry() -> None:
    ns, _ = _ns(LocatorMode.ENTRY_GOID)
    ns.link("/x", Locator(G1))
    assert ns.files.readdir("/root") == [f"{G1:016x}=x"]
    assert ns.files.stat(f"/root/{G1:016x}=x").size == 0
