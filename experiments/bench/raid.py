"""`xvol bench raid`: parity-math throughput of RAID-DP, RAID-5 and RAID-4 against memcpy and zfec.

The benchmark measures the pure parity math of :mod:`xvol.reference.storage.raid` (the same
:class:`~xvol.reference.storage.raid.ParityCode` functions the RAID groups use) on large in-memory
buffers, one buffer per disk as a disk would hold them: full-stripe *encode* (compute all parity
from the data) and *reconstruct* (rebuild two failed data disks for RAID-DP, one for RAID-4/5).
RAID-5 is laid out with its rotating parity, so its encode works on strided per-rotation views.
Every reconstruction is checked byte for byte against the original. Throughput is gigabytes of
user data per second (best of ``--repeats`` runs), set against two baselines measured in the same
run: ``numpy.copyto`` of the same number of bytes (memory bandwidth) and zfec's Reed-Solomon coder
with the same ``k`` data blocks and ``m = k + 2`` (two parity blocks, like RAID-DP).

Uses: numpy, rich, zfec (optional, the ``bench`` extra), :mod:`xvol.reference.storage.raid`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from xvol.errors import IntegrityError, InvalidArgumentError
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.storage.raid import U64, WORDS, ParityCode, smallest_prime_at_least

MIB = 1 << 20


@dataclass(frozen=True)
class Measurement:
    """One row of the result table: an operation, its data bytes and best time in seconds."""

    operation: str
    scheme: str
    data_bytes: int
    seconds: float

    @property
    def gb_per_s(self) -> float:
        """Gigabytes (1e9 bytes) of data per second."""
        return self.data_bytes / self.seconds / 1e9


def best_time(action: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``action`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def _disk_buffers(
    rng: np.random.Generator, disks: int, codewords: int, rows: int, data: int
) -> list[U64]:
    """One (codewords, rows, WORDS) uint64 buffer per disk; the first ``data`` hold random data."""
    buffers = []
    for index in range(disks):
        if index < data:
            buffers.append(rng.integers(0, 1 << 63, (codewords, rows, WORDS), dtype=np.uint64))
        else:
            buffers.append(np.zeros((codewords, rows, WORDS), dtype=np.uint64))
    return buffers


def _reconstruct(
    code: ParityCode, classes: list[tuple[list[U64], int]], lost: int, repeats: int, scheme: str
) -> Measurement:
    """Time rebuilding ``lost`` data disks: each class is (columns in code order, the lost
    disk's column index; RAID-DP also loses the next column); every run first zeroes the lost
    columns, and the result is checked against a copy."""
    cells = {(r, c) for r in range(code.rows) for c in range(code.columns)}
    plans = []
    for columns, first in classes:
        gone = tuple(range(first, first + lost))
        erased = {(r, c) for (r, c) in cells if c in gone}
        steps = code.schedule(frozenset(cells - erased), frozenset(erased))
        if steps is None:
            raise IntegrityError(f"{scheme}: no schedule rebuilds columns {gone}")
        plans.append((columns, gone, steps, [columns[c].copy() for c in gone]))

    def run() -> None:
        for columns, gone, steps, _ in plans:
            for c in gone:
                columns[c].fill(0)
            code.apply_blocked(columns, steps, lost=gone)

    seconds = best_time(run, repeats)
    for columns, gone, _, originals in plans:
        for c, original in zip(gone, originals, strict=True):
            if not np.array_equal(columns[c], original):
                raise IntegrityError(f"{scheme}: reconstruction of column {c} returned wrong bytes")
    data_bytes = sum(columns[j].nbytes for columns, *_ in plans for j in range(code.data_columns))
    what = "disk" if lost == 1 else "disks"
    return Measurement(f"reconstruct {lost} data {what}", scheme, data_bytes, seconds)


def bench_dp(
    rng: np.random.Generator, data_disks: int, size: int, repeats: int
) -> list[Measurement]:
    """RAID-DP full-stripe encode and double-failure reconstruct."""
    code = ParityCode("dp", data_disks)
    assert code.prime is not None
    codewords = max(1, size // (data_disks * code.rows * BLOCK_SIZE))
    columns = _disk_buffers(rng, code.columns, codewords, code.rows, data_disks)
    data, parity = columns[:data_disks], columns[data_disks:]
    scheme = f"RAID-DP p={code.prime}"
    encode = best_time(lambda: code.encode_blocked(data, parity), repeats)
    data_bytes = sum(c.nbytes for c in data)
    return [
        Measurement("full-stripe encode", scheme, data_bytes, encode),
        _reconstruct(code, [(columns, 0)], 2, repeats, scheme),
    ]


def bench_single(
    rng: np.random.Generator, level: str, data_disks: int, size: int, repeats: int, chunk: int
) -> list[Measurement]:
    """RAID-4 (fixed parity disk) or RAID-5 (parity rotating per stripe of ``chunk``-block
    chunks) encode and single-failure reconstruct."""
    code = ParityCode("5" if level == "5" else "4", data_disks)
    n = data_disks + 1
    stripes = max(n, size // (data_disks * chunk * BLOCK_SIZE) // n * n)
    disks = _disk_buffers(rng, n, stripes, chunk, n)  # all random: parity placement below
    if level == "5":
        # stripe s keeps parity on disk D - s mod n; data column j on disk (parity + 1 + j) mod n;
        # the stripes of one rotation class r (s = r mod n) are strided views of the disks
        classes = []
        for r in range(n):
            parity_disk = data_disks - r
            order = [(parity_disk + 1 + j) % n for j in range(n)]
            classes.append(([disks[d][r::n][:, None] for d in order], order.index(0)))
    else:
        classes = [([d[:, None] for d in disks], 0)]
    # the failed disk 0 holds parity in one RAID-5 class: rebuild data columns only, like the
    # other levels, so move to the next disk there
    classes = [(cols, lost if lost < data_disks else 0) for cols, lost in classes]

    def encode() -> None:
        for columns, _ in classes:
            code.encode_blocked(columns[:data_disks], columns[data_disks:])

    seconds = best_time(encode, repeats)
    data_bytes = data_disks * stripes * chunk * BLOCK_SIZE
    rebuilt = _reconstruct(code, classes, 1, repeats, f"RAID-{level}")
    return [Measurement("full-stripe encode", f"RAID-{level}", data_bytes, seconds), rebuilt]


def bench_memcpy(rng: np.random.Generator, size: int, repeats: int) -> Measurement:
    """numpy.copyto of ``size`` bytes: the memory-bandwidth baseline."""
    source = rng.integers(0, 256, size, dtype=np.uint8)
    target = np.empty_like(source)
    return Measurement(
        "memcpy", "numpy.copyto", size, best_time(lambda: np.copyto(target, source), repeats)
    )


def bench_zfec(
    rng: np.random.Generator, data_disks: int, size: int, repeats: int
) -> list[Measurement]:
    """zfec Reed-Solomon encode (k data -> 2 check blocks) and decode of 2 lost data blocks."""
    import zfec

    k, m = data_disks, data_disks + 2
    share = size // k // 8 * 8
    blocks = tuple(rng.integers(0, 256, share, dtype=np.uint8).tobytes() for _ in range(k))
    encoder = zfec.Encoder(k, m)
    checks = encoder.encode(blocks, (k, k + 1))
    encode = best_time(lambda: encoder.encode(blocks, (k, k + 1)), repeats)
    decoder = zfec.Decoder(k, m)
    kept = (*blocks[2:], *checks)
    numbers = (*range(2, k), k, k + 1)
    recovered = decoder.decode(kept, numbers)
    if bytes(recovered[0]) != blocks[0] or bytes(recovered[1]) != blocks[1]:
        raise IntegrityError("zfec decode returned wrong bytes")
    decode = best_time(lambda: decoder.decode(kept, numbers), repeats)
    scheme = f"zfec RS k={k} m={m}"
    return [
        Measurement("full-stripe encode", scheme, share * k, encode),
        Measurement("reconstruct 2 data disks", scheme, share * k, decode),
    ]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol bench raid``."""
    parser.add_argument("--size", type=int, default=48, help="MiB of data per run (default 48)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; best is kept")
    parser.add_argument("--data-disks", type=int, default=6, help="data disks k (default 6)")
    parser.add_argument("--quick", action="store_true", help="2 MiB, 2 repeats (smoke test)")
    parser.add_argument(
        "--chunk", type=int, default=16, help="RAID-4/5 chunk in blocks (default 16 = 64 KiB)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data")


def run(args: argparse.Namespace) -> int:
    """Measure and print the table; exit status 0."""
    size_mib, repeats = (2, 2) if args.quick else (args.size, args.repeats)
    if size_mib < 1 or repeats < 1 or args.data_disks < 2 or args.chunk < 1:
        raise InvalidArgumentError("--size, --repeats and --chunk must be >= 1, --data-disks >= 2")
    size = size_mib * MIB
    data_disks = args.data_disks
    rng = np.random.default_rng(args.seed)
    console = Console()
    p = smallest_prime_at_least(data_disks + 1)
    console.print(
        f"xvol bench raid: data disks {data_disks}, RAID-DP p={p}, {size_mib} MiB of data per "
        f"run, best of {repeats}, RAID-4/5 chunk {args.chunk} blocks, seed {args.seed}, "
        f"numpy {np.__version__}"
    )
    memcpy = bench_memcpy(rng, size, repeats)
    rows = [memcpy]
    rows += bench_dp(rng, data_disks, size, repeats)
    rows += bench_single(rng, "5", data_disks, size, repeats, args.chunk)
    rows += bench_single(rng, "4", data_disks, size, repeats, args.chunk)
    zfec_rows: dict[str, Measurement] = {}
    try:
        measured = bench_zfec(rng, data_disks, size, repeats)
    except ImportError:
        console.print("zfec is not importable (pip install 'xvol[bench]'): its column is skipped")
    else:
        rows += measured
        zfec_rows = {m.operation.split(" ")[0]: m for m in measured}
    table = Table(title="RAID parity math throughput (GB/s of user data)")
    for column in ("operation", "scheme", "GB/s", "x memcpy"):
        table.add_column(column, justify="right" if column != "operation" else "left")
    if zfec_rows:
        table.add_column("x zfec", justify="right")
    for row in rows:
        cells = [
            row.operation,
            row.scheme,
            f"{row.gb_per_s:.2f}",
            f"{row.gb_per_s / memcpy.gb_per_s:.2f}",
        ]
        if zfec_rows:
            base = zfec_rows.get(row.operation.split(" ")[0])
            cells.append(
                "" if base is None or row is memcpy else f"{row.gb_per_s / base.gb_per_s:.2f}"
            )
        table.add_row(*cells)
    console.print(table)
    if zfec_rows:
        dp_encode = rows[1].gb_per_s / zfec_rows["full-stripe"].gb_per_s
        verdict = "meets" if dp_encode >= 1.5 else "MISSES"
        console.print(f"RAID-DP encode / zfec encode = {dp_encode:.2f} ({verdict} the 1.5x target)")
    return 0
