"""`xvol raid`: a seeded RAID teaching simulator (layout, requests, per-disk I/O, failures).

It prints a small RAID group's layout (which disk and disk block hold each logical block and each
parity block), then a seeded list of logical read and write requests, and asks for each one which
disks it touches and how many I/Os it costs. With ``-c`` it answers by running every request on a
real :class:`~xvol.reference.storage.raid.RaidGroup` of the kit over memory disks (never a separate
formula): the per-disk read and write counters of the disks, the parity-update method the group
chose for writes (full-stripe, additive = reconstruct-write, subtractive = read-modify-write,
degraded), and, with failed disks (``-F``), which blocks were rebuilt from redundancy; every read
is checked against what the simulator wrote. Example::

    xvol raid -L dp -D 7 -n 4 -w 50 -F 2 -c

In the spirit of OSTEP's ``raid.py`` homework simulator; the code is the kit's own.

Uses: :mod:`.raid`, :mod:`.disk` (memory disks), numpy, random.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

import numpy as np

from xvol.errors import InvalidArgumentError
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.storage.raid import (
    LEVEL_NAMES,
    ParityCode,
    RaidDataLossError,
    RaidGroup,
    RaidLevel,
)


@dataclass(frozen=True)
class Request:
    """One logical request: read or write ``size`` blocks from logical block ``address``."""

    write: bool
    address: int
    size: int

    def __str__(self) -> str:
        kind = "WRITE" if self.write else "READ "
        return f"LOGICAL {kind} addr {self.address:4d} size {self.size}"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol raid`` (OSTEP-style short flags)."""
    parser.add_argument("-s", "--seed", type=int, default=0, help="random seed")
    parser.add_argument("-L", "--level", choices=["4", "5", "dp"], default="5", help="RAID level")
    parser.add_argument("-D", "--data-disks", type=int, default=4, help="number of data disks")
    parser.add_argument("-p", "--prime", type=int, default=None, help="RAID-DP prime p")
    parser.add_argument("-C", "--chunk", type=int, default=1, help="chunk size in blocks")
    parser.add_argument("-T", "--stripes", type=int, default=2, help="stripes per disk")
    parser.add_argument("-n", "--requests", type=int, default=5, help="number of requests")
    parser.add_argument("-S", "--size", type=int, default=1, help="blocks per request")
    parser.add_argument("-w", "--writes", type=int, default=0, help="percent of writes (0-100)")
    parser.add_argument(
        "-W", "--workload", choices=["rand", "seq"], default="rand", help="random or sequential"
    )
    parser.add_argument(
        "-F", "--failed", default="", help="comma-separated disk slots that have failed, e.g. 1,3"
    )
    parser.add_argument("-c", "--compute", action="store_true", help="compute the answers")


def _failed_slots(text: str, disks: int) -> list[int]:
    if not text.strip():
        return []
    try:
        slots = sorted({int(part) for part in text.split(",")})
    except ValueError as exc:
        raise InvalidArgumentError(f"-F wants disk numbers like 1,3; got {text!r}") from exc
    if any(not 0 <= s < disks for s in slots):
        raise InvalidArgumentError(f"-F: disks are numbered 0..{disks - 1}, got {text!r}")
    return slots


def _requests(args: argparse.Namespace, block_count: int) -> list[Request]:
    rng = random.Random(args.seed)
    out = []
    cursor = 0
    for _ in range(args.requests):
        if args.workload == "seq":
            address = cursor % (block_count - args.size + 1)
            cursor = address + args.size
        else:
            address = rng.randrange(0, block_count - args.size + 1)
        out.append(Request(rng.randrange(100) < args.writes, address, args.size))
    return out


def _layout(group: RaidGroup, failed: list[int]) -> list[str]:
    """Rows of text: one line per disk block, one column per disk."""
    d, p = group.data_disks, group.prime
    cells: dict[tuple[int, int], str] = {}
    for number in range(group.block_count):
        disk, block = group.locate(number)
        text = str(number)
        if p is not None:
            _, r, c = (int(x[0]) for x in group.decompose(np.array([number], dtype=np.int64)))
            text += f"/d{(r + c) % p}"
        cells[(disk, block)] = text
        for slot, (pdisk, pblock) in enumerate(group.parity_location(number)):
            if slot == 0:
                label = "P"
                if p is not None:
                    row = (pblock % group.stripe_height) // group.chunk_blocks
                    label = f"P/d{(row + p - 1) % p}" if (row + p - 1) % p != p - 1 else "P"
                cells[(pdisk, pblock)] = label
            else:
                row = (pblock % group.stripe_height) // group.chunk_blocks
                cells[(pdisk, pblock)] = f"Q{row}"
    labels = []
    for i in range(len(group.disks)):
        role = "" if group.level == "5" else ("P" if i == d else "Q" if i == d + 1 else "")
        mark = "X" if i in failed else ""
        labels.append(f"disk{i}{role}{mark}")
    width = 1 + max(len(text) for text in [*labels, *cells.values()])
    lines = ["block " + "".join(label.rjust(width) for label in labels)]
    for block in range(group.stripes * group.stripe_height):
        line = "".join(
            cells.get((disk, block), "?").rjust(width) for disk in range(len(group.disks))
        )
        lines.append(f"{block:5d} {line}")
        if (
            block + 1
        ) % group.stripe_height == 0 and block + 1 < group.stripes * group.stripe_height:
            lines.append("")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the simulation; with ``-c`` also the computed answers. Exit status 0."""
    level: RaidLevel = args.level
    if args.data_disks < 1 or args.chunk < 1 or args.stripes < 1 or args.requests < 0:
        raise InvalidArgumentError("-D, -C and -T must be >= 1 and -n >= 0")
    if not 0 <= args.writes <= 100:
        raise InvalidArgumentError(f"-w is a percentage (0..100), got {args.writes}")
    rows = ParityCode(level, args.data_disks, args.prime).rows  # validates level, D and p
    blocks_per_disk = args.stripes * rows * args.chunk
    group = RaidGroup.in_memory(
        level,
        args.data_disks,
        blocks_per_disk,
        chunk_blocks=args.chunk,
        prime=args.prime,
        name="sim",
    )
    failed = _failed_slots(args.failed, len(group.disks))
    if args.size < 1 or args.size > group.block_count:
        raise InvalidArgumentError(f"-S must be in 1..{group.block_count}, got {args.size}")

    print(f"ARG seed {args.seed}")
    print(f"ARG level {args.level}")
    print(f"ARG data disks {args.data_disks}")
    print(f"ARG prime {args.prime}")
    print(f"ARG chunk {args.chunk}")
    print(f"ARG stripes {args.stripes}")
    print(f"ARG requests {args.requests}")
    print(f"ARG request size {args.size}")
    print(f"ARG write percent {args.writes}")
    print(f"ARG workload {args.workload}")
    print(f"ARG failed disks {args.failed or 'none'}")
    print(f"ARG compute {args.compute}")
    print()
    print(
        f"{LEVEL_NAMES[level]} group: {args.data_disks} data disks + {group.code.parity_columns} "
        f"parity disk(s), {blocks_per_disk} blocks per disk, {group.block_count} logical blocks, "
        f"survives {group.tolerance} failed disk(s)."
    )
    if group.prime is not None:
        p = group.prime
        how = (
            "given with -p"
            if args.prime is not None
            else (f"the smallest prime >= D+1 = {args.data_disks + 1}")
        )
        virtual = p - 1 - args.data_disks
        print(
            f"Row-diagonal parity with p = {p} ({how}): each stripe is p-1 = {p - 1} rows; "
            f"disk P holds the XOR of each row, disk Q the XOR of each diagonal d = (row + disk) "
            f"mod p, where the row-parity disk counts as disk p-1 = {p - 1}; diagonal {p - 1} is "
            f"not stored."
        )
        if virtual:
            print(
                f"RDP needs p-1 = {p - 1} data disks; the {virtual} missing one(s) are virtual "
                f"zero-filled disks that cost nothing and appear in no equation."
            )
        print("A cell 'n/dk' is logical block n on diagonal k; 'P/dk' is row parity on diagonal k;")
        print("'Qk' is the parity of diagonal k.")
    elif level == "5":
        print("Parity rotates: stripe s keeps it on disk D - (s mod (D+1)) (left-symmetric).")
    print()
    for line in _layout(group, failed):
        print(line)
    if failed:
        print("(X marks a failed disk)")
    print()

    rng = np.random.default_rng(args.seed)
    shadow = rng.integers(0, 256, (group.block_count, BLOCK_SIZE), dtype=np.uint8)
    group.write_blocks(np.arange(group.block_count, dtype=np.int64), shadow)  # fill the disks
    for slot in failed:
        group.disks[slot].fail()
    group.reset_counters()
    requests = _requests(args, group.block_count)
    totals = np.zeros((len(group.disks), 2), dtype=np.int64)
    for index, request in enumerate(requests):
        print(f"{index}: {request}")
        if not args.compute:
            print("   which disks does it touch, and how many I/Os (reads, writes) per disk?")
            continue
        numbers = np.arange(request.address, request.address + request.size, dtype=np.int64)
        group.reset_counters()
        try:
            if request.write:
                new = rng.integers(0, 256, (request.size, BLOCK_SIZE), dtype=np.uint8)
                group.write_blocks(numbers, new)
                shadow[numbers] = new
            else:
                data = group.read_blocks(numbers)
                if not np.array_equal(data, shadow[numbers]):
                    raise AssertionError("the RAID group returned wrong data")  # never happens
        except RaidDataLossError as exc:
            print(f"   DATA LOSS: {exc}")
            continue
        touched = []
        for slot, member in enumerate(group.disks):
            reads, writes = member.counters.reads, member.counters.writes
            totals[slot] += (reads, writes)
            if reads or writes:
                touched.append(f"disk{slot} {reads}r/{writes}w")
        total = int(sum(d.counters.reads + d.counters.writes for d in group.disks))
        print(f"   touches: {', '.join(touched) or 'nothing'}  -> {total} I/Os")
        for number in numbers.tolist():
            home, block = group.locate(number)
            if home in failed:
                verb = "updated through parity only" if request.write else "rebuilt from redundancy"
                print(f"   block {number} lives on failed disk{home} (block {block}): {verb}")
        if request.write:
            stats = group.last_write
            methods = [
                f"{count} {name}"
                for name, count in (
                    ("full-stripe", stats.full_stripe),
                    ("additive (reconstruct-write)", stats.additive),
                    ("subtractive (read-modify-write)", stats.subtractive),
                    ("degraded (rebuild, then rewrite)", stats.degraded),
                )
                if count
            ]
            print(f"   parity update per codeword: {', '.join(methods)}")
        else:
            print("   data verified against what was written")
    if args.compute and requests:
        print()
        print(
            "per-disk totals: "
            + ", ".join(f"disk{s} {r}r/{w}w" for s, (r, w) in enumerate(totals.tolist()))
        )
        print(f"total I/Os: {int(totals.sum())}")
    elif not args.compute:
        print()
        print("Compute the answers with -c.")
    return 0
