"""``xvol volume``: a seeded teaching simulator of the write-anywhere volume.

It builds a small volume, runs a few random file operations grouped into consistency points (CPs)
and takes snapshots, then asks what happened: which blocks each CP wrote (and what each block
is), which blocks the snapshots share, and what a block-level diff between two snapshots
contains. With ``-c`` it computes the answers, as OSTEP's homework simulators do. Every run is a
pure function of its parameters (the seed included).

Uses: :mod:`xvol.reference.volume` (volume, layout, tree, diff) and, for the logical block
space, an in-memory aggregate from :mod:`xvol.reference.storage.aggregate`.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

import numpy as np

from xvol.errors import InvalidArgumentError, XvolError
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE, VolumeSpace
from xvol.reference.volume.diff import diff_snapshots
from xvol.reference.volume.layout import FIRST_DATA_BLOCK, FileType
from xvol.reference.volume.tree import BlockTree
from xvol.reference.volume.volume import Volume, _FileSystem, _slots

# --------------------------------------------------------------------------------------------
# What each block of a tree is
# --------------------------------------------------------------------------------------------


def block_roles(volume: Volume, fsinfo_vbn: int) -> dict[int, str]:
    """Every block of the tree rooted at ``fsinfo_vbn`` with a short description of its role
    (``fsinfo``, ``inode-file#0``, ``map#0``, ``/path#2`` for data block 2 of a file,
    ``/path:ind`` for an indirect block, ``/:dir#0`` for a directory block)."""
    space = volume.space
    fs = _FileSystem.at(space, fsinfo_vbn)
    roles = {fsinfo_vbn: "fsinfo"}
    _label_tree(roles, fs.ifile, "inode-file")
    _label_tree(roles, fs.map_tree, "map")
    paths: dict[int, str] = {}
    stack = [("/", 1)]
    while stack:
        path, ino = stack.pop()
        paths[ino] = path
        inode = fs.inode(ino)
        if inode.type == FileType.DIRECTORY:
            for entry in fs.readdir(ino):
                stack.append((path.rstrip("/") + "/" + entry.name, entry.ino))
    for ino, path in paths.items():
        inode = fs.inode(ino)
        tree = BlockTree.load(space, inode.pointers, _slots(inode.size))
        _label_tree(roles, tree, path + (":dir" if inode.type == FileType.DIRECTORY else ""))
    return roles


def _label_tree(roles: dict[int, str], tree: BlockTree, name: str) -> None:
    for fbn in np.flatnonzero(tree.vbn[: tree.slots]).tolist():
        roles[int(tree.vbn[fbn])] = f"{name}#{fbn}"
    for j in np.flatnonzero(tree.l1_vbn).tolist():
        roles[int(tree.l1_vbn[j])] = f"{name}:ind"
    if tree.l2_vbn:
        roles[tree.l2_vbn] = f"{name}:dind"


# --------------------------------------------------------------------------------------------
# The simulation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpRecord:
    """One consistency point: its number, the operations before it, the blocks it wrote."""

    cp: int
    operations: tuple[str, ...]
    written: dict[int, str]
    snapshot: str | None


def make_space(name: str, blocks: int) -> VolumeSpace:
    """An in-memory logical block space of ``blocks`` blocks from a small aggregate."""
    aggregate = Aggregate.create_in_memory("4", 4, blocks // 4 + 64, name=f"{name}-aggr")
    return aggregate.create_space(name, blocks)


def _random_operation(volume: Volume, rng: random.Random, counter: list[int]) -> str:
    files = sorted(p for p, s in volume.walk() if s.type == FileType.REGULAR)
    choice = rng.random()
    if choice < 0.45 or not files:
        counter[0] += 1
        path = f"/f{counter[0]}"
        size = rng.randint(1, 5) * BLOCK_SIZE - rng.randint(0, 100)
        volume.write_file(path, bytes([counter[0] % 256]) * size)
        return f"create {path} ({size} bytes, {-(-size // BLOCK_SIZE)} blocks)"
    path = rng.choice(files)
    size = volume.stat(path).size
    if choice < 0.75:
        block = rng.randrange(max(1, -(-size // BLOCK_SIZE)))
        volume.write(path, block * BLOCK_SIZE, b"\xee" * 100)
        return f"overwrite {path} block {block}"
    if choice < 0.9:
        new = size // 2
        volume.truncate(path, new)
        return f"truncate {path} to {new} bytes"
    volume.unlink(path)
    return f"unlink {path}"


def simulate(seed: int, operations: int, cps: int, blocks: int) -> tuple[Volume, list[CpRecord]]:
    """Run the simulation: ``cps`` rounds of ``operations`` random operations, each round ending
    in a CP; every other round's CP is a snapshot."""
    rng = random.Random(seed)
    volume = Volume.create(make_space("demo", blocks), "demo", auto_cp_blocks=1 << 30)
    records: list[CpRecord] = []
    counter = [0]
    for round_no in range(cps):
        before = block_roles(volume, volume._region.active_vbn)
        ops = tuple(_random_operation(volume, rng, counter) for _ in range(operations))
        snapshot = f"snap{round_no // 2 + 1}" if round_no % 2 == 0 else None
        if snapshot is None:
            volume.consistency_point()
        else:
            volume.create_snapshot(snapshot)
        after = block_roles(volume, volume._region.active_vbn)
        written = {b: role for b, role in sorted(after.items()) if b not in before}
        records.append(CpRecord(volume.cp, ops, written, snapshot))
    return volume, records


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol volume``."""
    parser.add_argument("-s", "--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("-n", "--ops", type=int, default=3, help="operations per CP (default 3)")
    parser.add_argument("-p", "--cps", type=int, default=4, help="consistency points (default 4)")
    parser.add_argument(
        "-b", "--blocks", type=int, default=128, help="volume blocks (default 128, min 40)"
    )
    parser.add_argument(
        "-c", "--compute", action="store_true", help="compute the answers to the questions"
    )


def run(args: argparse.Namespace) -> int:
    """Print the simulation and its questions (answers with ``-c``)."""
    if args.ops < 1 or args.cps < 2 or args.blocks < 40:
        raise InvalidArgumentError("need --ops >= 1, --cps >= 2 and --blocks >= 40")
    print(f"ARG seed {args.seed}")
    print(f"ARG ops {args.ops}")
    print(f"ARG cps {args.cps}")
    print(f"ARG blocks {args.blocks}")
    print(f"ARG compute {args.compute}")
    print()
    try:
        volume, records = simulate(args.seed, args.ops, args.cps, args.blocks)
    except XvolError as exc:
        raise InvalidArgumentError(
            f"the volume ran out of room ({exc}); use more --blocks"
        ) from exc
    print(
        f"Volume 'demo': {args.blocks} blocks of {BLOCK_SIZE} bytes; blocks 0-8 and 9-17 are "
        f"the two superblock regions, blocks {FIRST_DATA_BLOCK}.. are written anywhere."
    )
    print("CP 1 formatted the volume (root directory, inode file, allocation map, fsinfo).")
    print()
    for record in records:
        for op in record.operations:
            print(f"  {op}")
        label = f" = snapshot {record.snapshot}" if record.snapshot else ""
        print(f"CP {record.cp}{label}")
        if args.compute:
            for block, role in record.written.items():
                print(f"    wrote block {block:4d}  {role}")
        else:
            print("    which blocks did this CP write, and what is each?")
        print()
    snaps = volume.snapshots()
    print("Snapshots: " + ", ".join(f"{s.name} (ID {s.sid}, CP {s.cp})" for s in snaps))
    if len(snaps) >= 2:
        first, second = snaps[0], snaps[1]
        shared = np.flatnonzero(
            volume._snapshot_map(first.sid) & volume._snapshot_map(second.sid)
        ).tolist()
        diff = diff_snapshots(volume, first.name, second.name)
        roles = block_roles(volume, volume._record(second.name).fsinfo_vbn)
        exclusive = volume.snapshot_exclusive_blocks(first.name)
        print(f"Q1: which blocks do {first.name} and {second.name} share?")
        if args.compute:
            print(f"    {len(shared)} block(s): {shared}")
        print(f"Q2: what does the block diff {first.name} -> {second.name} contain?")
        if args.compute:
            for block in diff.numbers.tolist():
                print(f"    send block {block:4d}  {roles[block]}")
            print(
                f"    ({len(diff.numbers)} blocks to send; {len(diff.freed)} blocks of "
                f"{first.name} are no longer in {second.name})"
            )
        print(f"Q3: how many blocks would deleting {first.name} free?")
        if args.compute:
            print(f"    {exclusive} (blocks only {first.name} holds)")
    usage = volume.usage()
    print("Q4: how many blocks does the active file system use, and how many are free?")
    if args.compute:
        print(
            f"    active {usage.active}, held only by snapshots {usage.snapshot_only}, "
            f"free {usage.free}, superblocks {usage.reserved}"
        )
    if not args.compute:
        print()
        print("Run with -c to see the answers.")
    return 0
