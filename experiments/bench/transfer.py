"""``xvol bench transfer``: end-to-end incremental update throughput of block replication, in
process against memcpy, and over a simulated inter-site link against the code's own time.

The benchmark builds a source volume holding one file of ``--mib`` MiB (default 256), snapshots
it and sends the baseline to two replica volumes. Then, for 1%, 10% and 100% of the file's
blocks overwritten (in 8-block writes at random places; a new snapshot each time, sent
incrementally from the previous one):

* **direct**: the update through :class:`~xvol.reference.mirror.link.DirectLink` (no time model):
  birth-walk diff, read from the source's space (every block verified against its stored
  checksum, whose content sum becomes the record's checksum), send, verify every record's
  checksum at the destination, write into the destination's space (its disks' checksums derived
  from the verified content sums), commit. CPU time of this process for the one run (an update
  can be applied once). Baseline: ``numpy.copyto`` of the same number of bytes between two warm
  buffers, best of 5, in the same run and on the same clock. Both are timed with
  :func:`time.process_time`, not the wall clock, so that other load on the machine (the
  benchmark is single-threaded) changes neither side; on an idle machine the two clocks agree.
* **where the time goes**: the same records' primitives timed alone afterwards, batch by batch
  (best of 3): the diff, the source reads (with their verification), the destination's
  verification (one checksum pass over the received bytes), the destination writes given the
  verified sums (the identical bytes written again to the same blocks), and the rest (the
  protocol, the apply's checks, the checkpoints, the commit).
* **simulated**: the same update to the second replica over a
  :class:`~xvol.reference.mirror.link.SimulatedLink` (``--bandwidth`` MB/s, ``--latency`` ms,
  4 batches in flight): simulated seconds, and their ratio to the direct update's CPU time.
  A ratio above 1 means the link, not the code, bounds the transfer.

All of it runs on two substrates: ``RAID-4`` (every volume on its own in-memory RAID-4
aggregate of 8+1 disks, so every read and write also pays the disks' block checksums and the
parity) and ``plain`` (every volume on one numpy array, no RAID and no per-block checksums below
the volume), which separates the replication code's cost from the RAID layer's. Memory of both
is touched before anything is timed (as a preallocated device's would be), so that no timed run
pays the operating system's first-touch page faults. The 0.25x memcpy target is judged on
RAID-4. Both replicas are verified against the source (leaf digests) after every update, and
the run fails if they differ. GB = 10^9 bytes of block data.

Uses: numpy, simpy, rich, :mod:`xvol.reference.mirror` (link, replication),
:mod:`xvol.reference.volume`, :mod:`xvol.reference.storage` (aggregates, disks, content sums).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy
from rich.console import Console
from rich.table import Table

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.reference.mirror.link import DirectLink, SimulatedLink, run_sync
from xvol.reference.mirror.replication import BlockReplicator, ReplicationSource, VerifyReport
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE, BlockNumbers, Blocks
from xvol.reference.storage.checksum import (
    WEIGHTS,
    Checksums,
    content_sums,
    read_summed,
    write_summed,
)
from xvol.reference.storage.disk import MemoryDisk, run_start
from xvol.reference.storage.kernels import Words, copy_rows_summed
from xvol.reference.volume.diff import diff_snapshots
from xvol.reference.volume.volume import Volume

FRACTIONS = (0.01, 0.10, 1.00)
DATA_DISKS = 8
RUN_BLOCKS = 8
TARGET = 0.25
"""In-process update throughput target, as a fraction of memcpy."""


@dataclass(frozen=True)
class Row:
    """One update: its size and timings (CPU seconds; ``sim`` in simulated seconds)."""

    substrate: str
    fraction: float
    records: int
    direct: float
    memcpy: float
    diff: float
    read: float
    verify: float
    write: float
    sim: float
    sim_wall: float
    wire_bytes: int

    @property
    def bytes(self) -> int:
        """Block data moved."""
        return self.records * BLOCK_SIZE

    @property
    def direct_gbs(self) -> float:
        """In-process update throughput, GB/s."""
        return self.bytes / self.direct / 1e9

    @property
    def memcpy_gbs(self) -> float:
        """memcpy throughput of the same bytes, GB/s."""
        return self.bytes / self.memcpy / 1e9


class PlainSpace:
    """A VolumeSpace that is one numpy array: no RAID, no per-block checksums below the
    volume. Only for the bench's second substrate, to separate the replication code's cost
    from the RAID layer's (the transfer still checksums and verifies every block)."""

    def __init__(self, name: str, block_count: int) -> None:
        self._name = name
        self.data = np.zeros((block_count, BLOCK_SIZE), dtype=np.uint8)
        self.data.fill(0)  # touch every page now, as a preallocated device would be

    @property
    def words(self) -> Words:
        """The blocks as 64-bit words (a view, for the kernels)."""
        words: Words = self.data.view(np.uint64)
        return words

    @property
    def name(self) -> str:
        """The space's name."""
        return self._name

    @property
    def block_count(self) -> int:
        """Blocks in the space."""
        return len(self.data)

    def read_block(self, number: int) -> bytes:
        """One block's bytes."""
        return bytes(self.data[number].tobytes())

    def write_block(self, number: int, data: bytes) -> None:
        """Store one block."""
        self.data[number] = np.frombuffer(data, dtype=np.uint8)

    def read_blocks(self, numbers: BlockNumbers) -> Blocks:
        """Many blocks at once (a slice copy for a run of blocks, else a gather)."""
        first = run_start(numbers)
        if first is not None:
            run: Blocks = self.data[first : first + len(numbers)].copy()
            return run
        out: Blocks = self.data[numbers]
        return out

    def read_blocks_summed(self, numbers: BlockNumbers) -> tuple[Blocks, Checksums]:
        """Many blocks and their content sums, copied and summed in one pass (a run), as a
        disk hands them up (:class:`~xvol.reference.storage.checksum.SummedSpace`)."""
        first = run_start(numbers)
        if first is None:
            data = self.read_blocks(numbers)
            return data, content_sums(data)
        out = np.empty((len(numbers), BLOCK_SIZE), dtype=np.uint8)
        sums = np.empty(len(numbers), dtype=np.uint64)
        words = out.view(np.uint64)
        copy_rows_summed(self.words, first, 1, words, 0, 1, len(numbers), WEIGHTS, sums)
        return out, sums

    def write_blocks(self, numbers: BlockNumbers, data: Blocks) -> None:
        """Store many blocks at once (a slice for a run of blocks, else a scatter)."""
        first = run_start(numbers)
        if first is not None:
            self.data[first : first + len(numbers)] = data
        else:
            self.data[numbers] = data

    def resize(self, block_count: int) -> None:
        """Grow or shrink, keeping the common prefix."""
        grown = np.zeros((block_count, BLOCK_SIZE), dtype=np.uint8)
        keep = min(block_count, len(self.data))
        grown[:keep] = self.data[:keep]
        self.data = grown


SUBSTRATES = ("RAID-4", "plain")


def _volume(name: str, blocks: int, *, replica: bool, substrate: str) -> Volume:
    if substrate == "plain":
        return Volume.create(PlainSpace(name, blocks), name, replica=replica)
    per_disk = -(-(blocks + 64) // DATA_DISKS)
    aggregate = Aggregate.create_in_memory("4", DATA_DISKS, per_disk, name=f"{name}-aggr")
    for group in aggregate.raid_groups:
        for disk in group.disks:
            if isinstance(disk, MemoryDisk):
                disk.prefault()  # as PlainSpace: no first-touch page faults in the timed runs
    return Volume.create(aggregate.create_space(name, blocks), name, replica=replica)


def _memcpy(nbytes: int, repeats: int = 5) -> float:
    """Best CPU time of ``numpy.copyto`` of ``nbytes`` between two warm buffers."""
    source = np.full(nbytes, 7, dtype=np.uint8)
    dest = np.zeros(nbytes, dtype=np.uint8)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        np.copyto(dest, source)
        best = min(best, time.process_time() - start)
    return max(best, 1e-6)  # the CPU clock's resolution


class Bench:
    """The source, its two replicas and their relationships."""

    def __init__(
        self,
        blocks: int,
        *,
        bandwidth: float,
        latency: float,
        batch_blocks: int,
        seed: int,
        substrate: str = "RAID-4",
    ) -> None:
        self.blocks = blocks
        self.substrate = substrate
        self.rng = random.Random(seed)
        space = 2 * blocks + blocks // 32 + 4096
        self.source = _volume("src", space, replica=False, substrate=substrate)
        self.direct_dest = _volume("direct", space, replica=True, substrate=substrate)
        self.sim_dest = _volume("sim", space, replica=True, substrate=substrate)
        self.env = simpy.Environment()
        self.site = ReplicationSource({"src": self.source}, clock=lambda: float(self.env.now))
        self.direct = BlockReplicator(
            DirectLink(self.site).channel("direct"),
            "src",
            self.direct_dest,
            batch_blocks=batch_blocks,
            window=1,
        )
        self.link = SimulatedLink(self.env, self.site, bandwidth=bandwidth, latency=latency)
        self.sim = BlockReplicator(
            self.link.channel("sim"), "src", self.sim_dest, batch_blocks=batch_blocks
        )
        self.batch_blocks = batch_blocks
        self.serial = 0
        data = np.zeros((blocks, BLOCK_SIZE), dtype=np.uint8)
        stamps = data.view(np.uint64)
        stamps[:, 0] = np.arange(blocks, dtype=np.uint64)
        stamps[:, 1] = 0x5A5A5A5A5A5A5A5A
        self.source.create_file("/data")
        self.source.write_blocks("/data", 0, data)
        self._snapshot()
        run_sync(self.direct.transfer())
        self._simulate(self.sim)

    def _snapshot(self) -> str:
        self.serial += 1
        name = f"s{self.serial}"
        self.site.create_snapshot("src", name)
        return name

    def _simulate(self, replicator: BlockReplicator) -> float:
        start = self.env.now
        process = self.env.process(replicator.transfer())
        self.env.run(process)
        return float(self.env.now - start)

    def _overwrite(self, fraction: float) -> None:
        """Overwrite ``fraction`` of the file's blocks in 8-block writes at random places."""
        runs = self.blocks // RUN_BLOCKS
        chosen = sorted(self.rng.sample(range(runs), max(1, round(runs * fraction))))
        chunk = np.frombuffer(self.rng.randbytes(RUN_BLOCKS * BLOCK_SIZE), dtype=np.uint8)
        block = chunk.reshape(RUN_BLOCKS, BLOCK_SIZE).copy()
        for index in chosen:
            block[:, :8] = np.frombuffer(index.to_bytes(8, "little"), np.uint8)
            self.source.write_blocks("/data", index * RUN_BLOCKS, block)
        self.source.sync()

    def update(self, fraction: float) -> Row:
        """Overwrite, snapshot, send to both replicas (timed), verify both, time the parts."""
        base = self.direct_dest.snapshots()[-1].name
        self._overwrite(fraction)
        target = self._snapshot()
        start = time.process_time()
        result = run_sync(self.direct.transfer())
        direct = max(time.process_time() - start, 1e-6)
        start = time.process_time()
        sim = self._simulate(self.sim)
        sim_wall = time.process_time() - start
        for replicator in (self.direct, self.sim):
            report = self._verify(replicator)
            if not report:
                raise IntegrityError(f"replica {replicator.dest.name!r} differs after update")
        row = self._parts(fraction, base, target, result.records, direct, sim, sim_wall)
        self._forget(base)
        return row

    def _verify(self, replicator: BlockReplicator) -> bool:
        if replicator is self.direct:
            return run_sync(replicator.verify()).equal
        process = self.env.process(replicator.verify())
        self.env.run(process)
        report = process.value
        if not isinstance(report, VerifyReport):
            raise IntegrityError(f"verification of {replicator.dest.name!r} returned {report!r}")
        return report.equal

    def _parts(
        self,
        fraction: float,
        base: str,
        target: str,
        records: int,
        direct: float,
        sim: float,
        sim_wall: float,
    ) -> Row:
        """Time the pipeline's primitives alone on the update's records, batch by batch as
        the pipeline runs them (best of 3 passes, CPU time)."""
        diff_time, read, verify, write = (float("inf"),) * 4
        space = self.direct_dest.space
        clock = time.process_time
        for _ in range(3):
            start = clock()
            numbers = diff_snapshots(self.source, base, target).numbers
            diff_time = min(diff_time, clock() - start)
            times = [0.0, 0.0, 0.0]
            for lo in range(0, len(numbers), self.batch_blocks):
                batch = numbers[lo : lo + self.batch_blocks]
                start = clock()
                data, _ = read_summed(self.source.space, batch)
                middle = clock()
                sums = content_sums(data)
                end = clock()
                write_summed(space, batch, data, sums)  # the bytes the replica holds already
                times[0] += middle - start
                times[1] += end - middle
                times[2] += clock() - end
            read, verify, write = (
                min(read, times[0]),
                min(verify, times[1]),
                min(write, times[2]),
            )
        return Row(
            self.substrate,
            fraction,
            records,
            direct,
            _memcpy(records * BLOCK_SIZE),
            diff_time,
            read,
            verify,
            write,
            sim,
            sim_wall,
            self.sim.progress().wire_bytes,
        )

    def _forget(self, base: str) -> None:
        """Delete the old common snapshot everywhere (the new one is the next base)."""
        for volume in (self.source, self.direct_dest, self.sim_dest):
            volume.delete_snapshot(base)


def measure(
    mib: int,
    *,
    bandwidth: float,
    latency: float,
    batch_blocks: int,
    seed: int,
    progress: Callable[[str], None],
) -> list[Row]:
    """For each substrate, build the bench and run the three updates; one :class:`Row` each."""
    blocks = mib * (1 << 20) // BLOCK_SIZE
    rows = []
    for substrate in SUBSTRATES:
        progress(f"{substrate}: building a {mib} MiB source and two baseline replicas")
        bench = Bench(
            blocks,
            bandwidth=bandwidth,
            latency=latency,
            batch_blocks=batch_blocks,
            seed=seed,
            substrate=substrate,
        )
        for fraction in FRACTIONS:
            progress(f"{substrate}: update of {fraction:.0%} of the blocks")
            rows.append(bench.update(fraction))
        del bench  # free its volumes before the next substrate
    return rows


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol bench transfer``."""
    parser.add_argument("--quick", action="store_true", help="an 8 MiB volume (for tests)")
    parser.add_argument("--mib", type=int, default=256, help="size of the volume's data, MiB")
    parser.add_argument(
        "--bandwidth", type=float, default=100.0, help="simulated link bandwidth, MB/s"
    )
    parser.add_argument("--latency", type=float, default=1.0, help="one-way latency, ms")
    parser.add_argument("--batch", type=int, default=1024, help="blocks per batch request")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the tables and ratios; exit status 1 if a full run misses
    the in-process target."""
    mib = 8 if args.quick else args.mib
    if mib < 1 or args.bandwidth <= 0 or args.latency < 0 or args.batch < 1:
        raise InvalidArgumentError("--mib, --bandwidth and --batch must be > 0, --latency >= 0")
    console = Console(width=max(Console().width, 110))
    console.print(
        f"transfer benchmark: {mib} MiB volume, RAID-4 ({DATA_DISKS}+1) aggregates, batches of "
        f"{args.batch} blocks, simulated link {args.bandwidth:g} MB/s, {args.latency:g} ms, "
        f"seed {args.seed}; times are CPU time of this process"
    )
    with console.status("starting") as status:
        rows = measure(
            mib,
            bandwidth=args.bandwidth * 1e6,
            latency=args.latency / 1e3,
            batch_blocks=args.batch,
            seed=args.seed,
            progress=status.update,
        )
    table = Table(title="incremental update: in process (direct link) vs memcpy vs simulated link")
    for column in ("spaces", "changed", "records", "MiB", "direct CPU s", "direct GB/s",
                   "memcpy GB/s", "direct/memcpy", "sim s", "sim/direct", "wire MiB"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.substrate,
            f"{row.fraction:.0%}",
            f"{row.records:,}",
            f"{row.bytes / 2**20:.1f}",
            f"{row.direct:.3f}",
            f"{row.direct_gbs:.2f}",
            f"{row.memcpy_gbs:.2f}",
            f"{row.direct_gbs / row.memcpy_gbs:.3f}x",
            f"{row.sim:.2f}",
            f"{row.sim / row.direct:.1f}x",
            f"{row.wire_bytes / 2**20:.1f}",
        )
    console.print(table)
    parts = Table(title="where the in-process time goes (primitives timed alone, share of direct)")
    for column in ("spaces", "changed", "diff", "source read", "dest verify", "dest write",
                   "rest"):  # fmt: skip
        parts.add_column(column, justify="right")
    for row in rows:
        rest = row.direct - row.diff - row.read - row.verify - row.write
        shares = (row.diff, row.read, row.verify, row.write, rest)
        parts.add_row(
            row.substrate,
            f"{row.fraction:.0%}",
            *(f"{value * 1e3:.0f} ms ({value / row.direct:.0%})" for value in shares),
        )
    console.print(parts)
    met = True
    for substrate in SUBSTRATES:
        largest = [r for r in rows if r.substrate == substrate][-1]
        ratio = largest.direct_gbs / largest.memcpy_gbs
        ok = ratio >= TARGET
        met = met and (ok or substrate == "plain")
        console.print(
            f"in-process update of 100% on {substrate} spaces: {largest.direct_gbs:.2f} GB/s = "
            f"{ratio:.3f}x memcpy (target >= {TARGET}x: {'met' if ok else 'MISSED'})"
        )
    console.print(
        f"simulated link at {args.bandwidth:g} MB/s: the same updates take "
        + ", ".join(f"{r.sim / r.direct:.0f}x" for r in rows)
        + " the code's CPU time, so the link is the bottleneck"
        if all(r.sim > r.direct for r in rows)
        else "the code, not the simulated link, bounds at least one update"
    )
    if args.quick:
        return 0
    return 0 if met else 1
