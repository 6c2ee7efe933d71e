"""Tests of the block replication protocol (xvol.reference.mirror.replication): baseline and
incremental transfers over a simulated link reproduce the source's snapshots bit for bit on
another aggregate; a byte flipped in flight raises IntegrityError and leaves the destination as
it was; a link cut at any point leaves the destination at its previous snapshot, readable, and
the resumed transfer sends no committed block again and ends bit-identical (also across a
destination restart with file checkpoints); throttles bound the rate; progress, ETA and lag are
consistent; verification finds a single differing block; relationships share a link."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xvol.errors import IntegrityError, InvalidArgumentError, NotFoundError
from xvol.reference.mirror.link import (
    Cut,
    DirectLink,
    LinkDownError,
    Message,
    Process,
    SimulatedLink,
    run_sync,
)
from xvol.reference.mirror.replication import (
    BatchReply,
    BlockReplicator,
    FileCheckpointStore,
    MemoryCheckpointStore,
    ReplicationSource,
    TransferProgress,
)
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.volume.diff import BlockBatch
from xvol.reference.volume.layout import FileType
from xvol.reference.volume.volume import FileSystemView, Volume


def make_volume(name: str, blocks: int, *, replica: bool = False) -> Volume:
    aggregate = Aggregate.create_in_memory("4", 4, 1000, name=f"{name}-aggr")
    return Volume.create(aggregate.create_space(name, blocks), name, replica=replica)


def image(view: Volume | FileSystemView) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for path, stat in view.walk():
        out[path] = None if stat.type == FileType.DIRECTORY else view.read_file(path)
    return out


def check_replica(source: Volume, dest: Volume) -> None:
    """Every snapshot of ``dest`` is bit for bit the source's: same UUID, same blocks."""
    for info in dest.snapshots():
        src = source.snapshot_info(info.uuid)
        assert (src.name, src.cp) == (info.name, info.cp)
        src_map = source._snapshot_map(src.sid)
        dst_map = dest._snapshot_map(info.sid)[: len(src_map)]
        assert np.array_equal(src_map, dst_map)
        numbers = np.flatnonzero(src_map)
        assert np.array_equal(source.space.read_blocks(numbers), dest.space.read_blocks(numbers))
        assert image(source.snapshot(info.uuid)) == image(dest.snapshot(info.uuid))


def mutate(volume: Volume, rng: random.Random, writes: int = 4) -> None:
    for _ in range(writes):
        path = rng.choice(["/a", "/b", "/d/c"])
        if not volume.exists("/d"):
            volume.mkdir("/d")
        volume.create_file(path, exist_ok=True)
        volume.write(path, rng.randint(0, 200_000), rng.randbytes(rng.randint(1, 120_000)))
    if rng.random() < 0.3 and volume.exists("/b"):
        volume.unlink("/b")


class Sites:
    """A source volume, a replica, a simulated link between them and one relationship."""

    def __init__(
        self,
        seed: int = 0,
        *,
        bandwidth: float = 50e6,
        latency: float = 0.002,
        batch_blocks: int = 16,
        window: int = 3,
        cut: Cut | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.env = simpy.Environment()
        self.source = make_volume("src", 3000)
        self.dest = make_volume("dst", 200, replica=True)
        self.site = ReplicationSource({"src": self.source}, clock=lambda: float(self.env.now))
        self.link = SimulatedLink(
            self.env,
            self.site,
            bandwidth=bandwidth,
            latency=latency,
            rto=0.05,
            max_retries=2,
            cut=cut or Cut(),
        )
        self.store = MemoryCheckpointStore()
        self.progress: list[TransferProgress] = []
        self.replicator = self.make_replicator(batch_blocks=batch_blocks, window=window)
        self.serial = 0

    def make_replicator(self, **options: int) -> BlockReplicator:
        return BlockReplicator(
            self.link.channel("rel"),
            "src",
            self.dest,
            checkpoints=self.store,
            on_progress=self.progress.append,
            **options,  # type: ignore[arg-type]
        )

    def snapshot(self) -> str:
        mutate(self.source, self.rng)
        self.serial += 1
        name = f"s{self.serial}"
        self.site.create_snapshot("src", name)
        return name

    def run(self, process: Process[object]) -> object:
        proc = self.env.process(process)
        self.env.run(proc)
        return proc.value


# --------------------------------------------------------------------------------------------


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), window=st.integers(1, 4))
def test_baseline_then_incrementals_reproduce_every_snapshot_bit_for_bit(
    seed: int, window: int
) -> None:
    sites = Sites(seed, window=window)
    for _ in range(4):
        name = sites.snapshot()
        result = sites.run(sites.replicator.transfer())
        assert result.snapshot.name == name  # type: ignore[attr-defined]
        check_replica(sites.source, sites.dest)
    reopened = Volume.open(sites.dest.space)
    check_replica(sites.source, reopened)
    assert image(reopened) == image(sites.source.snapshot(f"s{sites.serial}"))
    assert sites.store.load("rel") is None  # finished transfers leave no checkpoint


def test_direct_link_runs_the_same_protocol_synchronously() -> None:
    source = make_volume("src", 3000)
    dest = make_volume("dst", 200, replica=True)
    site = ReplicationSource({"src": source})
    replicator = BlockReplicator(DirectLink(site).channel("r"), "src", dest, window=2)
    rng = random.Random(3)
    for name in ("a", "b"):
        mutate(source, rng)
        source.create_snapshot(name)
        result = run_sync(replicator.transfer())
        assert result.snapshot.name == name and result.seconds == 0.0
    check_replica(source, dest)
    progress = replicator.progress()
    assert progress.state == "done" and progress.rate is None and progress.eta == 0.0


def flip_one_byte(message: Message) -> Message:
    if isinstance(message, BatchReply) and message.position > 0:
        data = message.batch.data.copy()
        data[len(data) // 2, 100] ^= 0x10
        batch = BlockBatch(message.batch.numbers, data, message.batch.checksums)
        return BatchReply(message.position, batch)
    return message


def test_a_byte_flipped_in_flight_raises_integrity_error_and_changes_nothing() -> None:
    sites = Sites(1)
    first = sites.snapshot()
    sites.run(sites.replicator.transfer())
    before = image(sites.dest)
    sites.snapshot()
    sites.link.tamper = flip_one_byte
    with pytest.raises(IntegrityError, match="fails its checksum"):
        sites.run(sites.replicator.transfer())
    assert [s.name for s in sites.dest.snapshots()] == [first]
    assert image(sites.dest) == before == image(sites.source.snapshot(first))
    assert image(Volume.open(sites.dest.space)) == before
    assert sites.replicator.progress().state == "failed"
    # the corruption cost only that batch: the retry resumes and ends bit-identical
    sites.link.tamper = None
    result = sites.run(sites.replicator.transfer())
    assert result.records_resumed > 0  # type: ignore[attr-defined]
    check_replica(sites.source, sites.dest)


def test_a_failed_transfer_cancels_its_batch_requests_still_in_flight() -> None:
    sites = Sites(4, bandwidth=2e6, batch_blocks=4, window=4)
    sites.snapshot()
    sites.run(sites.replicator.transfer())
    sites.snapshot()
    sites.link.tamper = flip_one_byte
    with pytest.raises(IntegrityError):
        sites.run(sites.replicator.transfer())
    stats = sites.link.stats
    before = (stats.messages, stats.replies, sites.site.records_served)
    sites.env.run(until=sites.env.now + 60.0)
    # nothing of the failed transfer crosses the wire or runs at the source afterwards
    assert (stats.messages, stats.replies, sites.site.records_served) == before


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), by_bytes=st.booleans(), where=st.floats(0.0, 1.0))
def test_cut_at_any_point_keeps_the_previous_snapshot_and_resume_sends_no_block_twice(
    seed: int, by_bytes: bool, where: float
) -> None:
    sites = Sites(seed)
    first = sites.snapshot()
    sites.run(sites.replicator.transfer())
    before = image(sites.dest)
    target = sites.snapshot()
    stats = sites.link.stats
    records = sum(len(b.numbers) for b in _all_batches(sites, first, target))
    if by_bytes:
        sites.link.cut = Cut(after_bytes=stats.bytes + int(where * records * BLOCK_SIZE))
    else:
        messages = 2 + 2 * -(-records // 16)  # open, then one request and reply per batch
        sites.link.cut = Cut(at_message=stats.messages + 1 + int(where * (messages - 1)))
    with pytest.raises(LinkDownError):
        sites.run(sites.replicator.transfer())
    assert [s.name for s in sites.dest.snapshots()] == [first]
    assert image(sites.dest) == before == image(Volume.open(sites.dest.space))
    stored = sites.store.load("rel")
    applied = 0 if stored is None else stored.apply.applied
    cursor = -1 if stored is None else stored.apply.cursor
    # resume: record every block the source sends from now on
    sent: list[np.ndarray] = []
    original = sites.site.handle

    def watching(request: Message) -> Message:
        reply = original(request)
        if isinstance(reply, BatchReply):
            sent.append(reply.batch.numbers)
        return reply

    sites.site.handle = watching  # type: ignore[method-assign]
    sites.link.restore()
    result = sites.run(sites.replicator.transfer())
    numbers = np.concatenate(sent) if sent else np.zeros(0, np.int64)
    assert result.records_resumed == applied  # type: ignore[attr-defined]
    assert len(numbers) == result.records - applied  # type: ignore[attr-defined]
    assert (numbers > cursor).all()  # no committed block is sent again
    assert result.snapshot.name == target  # type: ignore[attr-defined]
    check_replica(sites.source, sites.dest)


def _all_batches(sites: Sites, base: str, target: str) -> list[BlockBatch]:
    from xvol.reference.volume.diff import diff_snapshots

    return list(diff_snapshots(sites.source, base, target).batches(64))


def test_resume_after_a_destination_restart_uses_the_file_checkpoint(tmp_path: Path) -> None:
    sites = Sites(5, batch_blocks=8, window=1)
    sites.store = FileCheckpointStore(tmp_path)  # type: ignore[assignment]
    sites.replicator = sites.make_replicator(batch_blocks=8, window=1)
    sites.snapshot()
    sites.link.cut = Cut(at_message=sites.link.stats.messages + 12)
    with pytest.raises(LinkDownError):
        sites.run(sites.replicator.transfer())
    stored = sites.store.load("rel")
    assert stored is not None and stored.apply.applied == 32  # 4 of 5 replies of 8 arrived
    # the destination process restarts: reopen its volume, a new replicator, same directory
    sites.dest = Volume.open(sites.dest.space)
    sites.store = FileCheckpointStore(tmp_path)  # type: ignore[assignment]
    sites.replicator = sites.make_replicator(batch_blocks=8, window=1)
    sites.link.restore()
    result = sites.run(sites.replicator.transfer())
    assert result.records_resumed == 32  # type: ignore[attr-defined]
    check_replica(sites.source, sites.dest)
    assert not list(tmp_path.iterdir())


def test_a_checkpoint_for_another_target_is_dropped_and_the_transfer_starts_over() -> None:
    sites = Sites(6, batch_blocks=2, window=1)
    sites.snapshot()
    sites.link.cut = Cut(at_message=sites.link.stats.messages + 6)
    with pytest.raises(LinkDownError):
        sites.run(sites.replicator.transfer())
    assert sites.store.load("rel") is not None
    newer = sites.snapshot()
    sites.link.restore()
    result = sites.run(sites.replicator.transfer(newer))
    assert result.records_resumed == 0 and result.snapshot.name == newer  # type: ignore[attr-defined]
    check_replica(sites.source, sites.dest)


def test_throttle_bounds_the_transfer_rate_in_simulated_time() -> None:
    fast, slow = Sites(7, bandwidth=100e6), Sites(7, bandwidth=100e6)
    slow.link.channel("rel", throttle=2e6)
    results = []
    for sites in (fast, slow):
        sites.snapshot()
        results.append(sites.run(sites.replicator.transfer()))
    quick, throttled = results
    data = throttled.records * BLOCK_SIZE  # type: ignore[attr-defined]
    batch = 16 * (BLOCK_SIZE + 24) + 64
    assert data <= 2e6 * throttled.seconds + batch  # type: ignore[attr-defined]
    assert throttled.seconds > 5 * quick.seconds  # type: ignore[attr-defined]


def test_progress_and_eta_are_consistent_and_reach_done() -> None:
    sites = Sites(8, bandwidth=5e6, latency=0.01)
    sites.snapshot()
    result = sites.run(sites.replicator.transfer())
    running = [p for p in sites.progress if p.state == "running" and p.records_total]
    assert running and sites.progress[-1].state == "done"
    done = [p.records_done for p in running]
    assert done == sorted(done)
    for p in running:
        assert p.bytes_done == p.records_done * BLOCK_SIZE <= p.bytes_total
        assert p.records_total == result.records  # type: ignore[attr-defined]
        if p.rate and p.records_done < p.records_total:
            assert p.eta == pytest.approx((p.bytes_total - p.bytes_done) / p.rate)
            assert p.rate <= 5e6  # never faster than the link
    last = sites.progress[-1]
    assert last.fraction == 1.0 and last.eta == 0.0
    assert last.elapsed == pytest.approx(result.seconds)  # type: ignore[attr-defined]
    assert last.wire_bytes == result.wire_bytes > last.bytes_total  # type: ignore[attr-defined]


def test_lag_counts_cps_blocks_and_seconds_behind_the_source() -> None:
    sites = Sites(9)
    first = sites.snapshot()
    lag = sites.run(sites.replicator.lag())
    assert lag.dest_newest is None and lag.source_newest.name == first  # type: ignore[attr-defined]
    sites.run(sites.replicator.transfer())
    now_lag = sites.run(sites.replicator.lag())
    assert (now_lag.cps, now_lag.blocks) == (0, 0)  # type: ignore[attr-defined]
    sites.env.run(sites.env.now + 30.0)
    second = sites.snapshot()
    behind = sites.run(sites.replicator.lag())
    base = sites.source.snapshot_info(first)
    newest = sites.source.snapshot_info(second)
    assert behind.cps == newest.cp - base.cp > 0  # type: ignore[attr-defined]
    assert behind.bytes == behind.blocks * BLOCK_SIZE > 0  # type: ignore[attr-defined]
    assert behind.seconds >= 30.0  # type: ignore[attr-defined]
    result = sites.run(sites.replicator.transfer())
    assert result.records == behind.blocks  # type: ignore[attr-defined]


def test_verify_finds_exactly_one_differing_block_cheaply() -> None:
    sites = Sites(10)
    sites.snapshot()
    sites.run(sites.replicator.transfer())
    clean = sites.run(sites.replicator.verify(leaf_blocks=64))
    assert clean.equal and clean.differing_blocks.size == 0  # type: ignore[attr-defined]
    info = sites.dest.snapshots()[-1]
    used = np.flatnonzero(sites.dest._snapshot_map(info.sid))
    # an equal replica still says how much the leaf digests covered: every referenced block
    assert clean.blocks_compared == len(used) > 0  # type: ignore[attr-defined]
    assert clean.blocks_rechecked == 0  # type: ignore[attr-defined]
    victim = int(used[len(used) // 2])
    block = sites.dest.space.read_blocks(np.array([victim], dtype=np.int64)).copy()
    block[0, 7] ^= 1
    sites.dest.space.write_blocks(np.array([victim], dtype=np.int64), block)
    report = sites.run(sites.replicator.verify(leaf_blocks=64))
    assert not report.equal  # type: ignore[attr-defined]
    assert report.differing_blocks.tolist() == [victim]  # type: ignore[attr-defined]
    assert report.differing_leaves == (victim // 64,)  # type: ignore[attr-defined]
    assert report.blocks_compared == len(used)  # type: ignore[attr-defined]
    in_leaf = int(((used // 64) == victim // 64).sum())
    assert report.blocks_rechecked == in_leaf  # type: ignore[attr-defined]
    assert report.wire_bytes < len(used) * BLOCK_SIZE // 10  # type: ignore[attr-defined]


def test_two_relationships_share_one_link_and_finish_independently() -> None:
    env = simpy.Environment()
    rng = random.Random(11)
    sources = {name: make_volume(name, 3000) for name in ("ns", "dc1")}
    site = ReplicationSource(sources)
    link = SimulatedLink(env, site, bandwidth=20e6, latency=0.005)
    replicators = {}
    for name, volume in sources.items():
        mutate(volume, rng, writes=3 if name == "ns" else 8)
        site.create_snapshot(name, "s1")
        dest = make_volume(f"{name}-dst", 200, replica=True)
        replicators[name] = BlockReplicator(link.channel(name), name, dest, batch_blocks=8)
    procs = {name: env.process(r.transfer()) for name, r in replicators.items()}
    env.run(env.all_of(list(procs.values())))
    for name, replicator in replicators.items():
        check_replica(sources[name], replicator.dest)
    small, large = procs["ns"].value, procs["dc1"].value
    assert small.seconds < large.seconds  # the smaller volume finishes first
    total = sum(c.stats.bytes for c in (link.channel("ns"), link.channel("dc1")))
    assert total == link.stats.bytes
    assert env.now >= (large.wire_bytes + small.wire_bytes) / 2 / 20e6


def test_missing_common_snapshot_and_unknown_volume_are_typed_errors() -> None:
    sites = Sites(12)
    first = sites.snapshot()
    sites.run(sites.replicator.transfer())
    sites.snapshot()
    sites.source.delete_snapshot(first)
    with pytest.raises(NotFoundError, match=r"common snapshot.*baseline=True"):
        sites.run(sites.replicator.transfer())
    stranger = BlockReplicator(sites.link.channel("x"), "nope", make_volume("d2", 200))
    with pytest.raises(NotFoundError, match="no volume 'nope'"):
        sites.run(stranger.transfer())
    with pytest.raises(InvalidArgumentError):
        BlockReplicator(sites.link.channel("y"), "src", sites.dest, window=0)


def test_checkpoint_survives_a_json_round_trip(tmp_path: Path) -> None:
    sites = Sites(13, batch_blocks=8, window=1)
    sites.snapshot()
    sites.link.cut = Cut(at_message=sites.link.stats.messages + 8)
    with pytest.raises(LinkDownError):
        sites.run(sites.replicator.transfer())
    stored = sites.store.load("rel")
    assert stored is not None
    files = FileCheckpointStore(tmp_path)
    files.save(stored)
    assert files.load("rel") == stored
    (tmp_path / "rel.checkpoint.json").write_text("{not json")
    with pytest.raises(IntegrityError, match="damaged"):
        files.load("rel")
    assert replace(stored, relationship="other") != stored
