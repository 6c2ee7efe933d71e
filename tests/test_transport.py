"""Tests of the byte transport (xvol.reference.mirror.transport): every replication message
survives encode/decode, typed errors come back as their class, malformed or unknown input is
refused with IntegrityError, and the block replication protocol runs unchanged over a TCP
socket on 127.0.0.1 (baseline, incremental, verification), with a closed server seen as a
LinkDownError."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from xvol.errors import IntegrityError, InvalidArgumentError, NotFoundError
from xvol.reference.mirror.link import ErrorReply, LinkDownError, Message, run_sync
from xvol.reference.mirror.replication import (
    BatchReply,
    BlockReplicator,
    DigestReply,
    FetchBatch,
    LeafRequest,
    OpenTransfer,
    ReplicationSource,
    TransferOpened,
)
from xvol.reference.mirror.transport import SocketLink, SocketServer, decode, encode
from xvol.reference.storage.aggregate import Aggregate
from xvol.reference.storage.block import BLOCK_SIZE
from xvol.reference.volume.diff import diff_snapshots
from xvol.reference.volume.volume import Volume


def make_volume(name: str, blocks: int, *, replica: bool = False) -> Volume:
    aggregate = Aggregate.create_in_memory("4", 4, 1000, name=f"{name}-aggr")
    return Volume.create(aggregate.create_space(name, blocks), name, replica=replica)


def fill(volume: Volume, seed: int) -> None:
    rng = random.Random(seed)
    for path in ("/a", "/b"):
        volume.create_file(path, exist_ok=True)
        volume.write(path, rng.randint(0, 50_000), rng.randbytes(rng.randint(1, 90_000)))


def test_replication_messages_survive_encode_and_decode() -> None:
    source = make_volume("src", 3000)
    fill(source, 1)
    source.create_snapshot("s1")
    diff = diff_snapshots(source, None, "s1")
    batch = next(diff.batches(8))
    simple: list[Message] = [
        OpenTransfer("src", None, "s1", 17),
        OpenTransfer("src", uuid.uuid4(), uuid.uuid4()),
        TransferOpened(diff.header, 3),
        FetchBatch("src", None, diff.header.target.uuid, 8, 8),
    ]
    for message in simple:
        assert decode(encode(message)) == message
    reply = decode(encode(BatchReply(0, batch)))
    assert isinstance(reply, BatchReply)
    for got, want in zip(
        (reply.batch.numbers, reply.batch.data, reply.batch.checksums),
        (batch.numbers, batch.data, batch.checksums),
        strict=True,
    ):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    digests = DigestReply(3000, np.arange(48, dtype=np.uint8).reshape(3, 16))
    back = decode(encode(digests))
    assert isinstance(back, DigestReply) and np.array_equal(back.digests, digests.digests)
    leaves = decode(encode(LeafRequest("src", uuid.uuid4(), 64, np.array([1, 5]))))
    assert isinstance(leaves, LeafRequest) and leaves.leaves.tolist() == [1, 5]
    # block data travels as raw bytes, not text
    assert len(encode(BatchReply(0, batch))) < len(batch.numbers) * (BLOCK_SIZE + 24) + 2000


def test_typed_errors_are_rebuilt_as_their_class() -> None:
    back = decode(encode(ErrorReply(NotFoundError("no snapshot 'x'"))))
    assert isinstance(back, ErrorReply) and type(back.error) is NotFoundError
    assert str(back.error) == "no snapshot 'x'"
    down = decode(encode(ErrorReply(LinkDownError("gone"))))
    assert isinstance(down, ErrorReply) and isinstance(down.error, LinkDownError)


@dataclass(frozen=True)
class Unregistered(Message):
    value: int


def test_unknown_types_and_malformed_bytes_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="does not carry"):
        encode(Unregistered(1))
    good = encode(OpenTransfer("src", None, None))
    forged = good.replace(b"OpenTransfer", b"Unregistered")
    with pytest.raises(IntegrityError, match="unknown type"):
        decode(forged)
    with pytest.raises(IntegrityError, match="malformed"):
        decode(good[:-3])
    with pytest.raises(IntegrityError):
        decode(good + b"junk")


@pytest.fixture
def served() -> Iterator[tuple[Volume, SocketServer]]:
    source = make_volume("src", 3000)
    server = SocketServer(ReplicationSource({"src": source})).start()
    yield source, server
    server.close()


def test_replication_runs_unchanged_over_a_socket_on_localhost(
    served: tuple[Volume, SocketServer],
) -> None:
    source, server = served
    assert server.address[0] == "127.0.0.1"
    link = SocketLink(server.address)
    dest = make_volume("dst", 200, replica=True)
    replicator = BlockReplicator(link.channel("rel"), "src", dest, batch_blocks=16)
    for seed, name in enumerate(("s1", "s2")):
        fill(source, seed)
        source.create_snapshot(name)
        result = run_sync(replicator.transfer())
        assert result.snapshot.name == name
        assert dest.read_file("/a") == source.read_file("/a")
    report = run_sync(replicator.verify(leaf_blocks=64))
    assert report.equal
    assert link.stats.bytes > result.records * BLOCK_SIZE
    with pytest.raises(NotFoundError):  # typed errors cross the socket
        run_sync(BlockReplicator(link.channel("x"), "nope", dest).lag())
    link.close()


def test_a_dead_server_is_a_link_down_error(served: tuple[Volume, SocketServer]) -> None:
    source, server = served
    fill(source, 3)
    source.create_snapshot("s1")
    link = SocketLink(server.address)
    dest = make_volume("dst", 200, replica=True)
    replicator = BlockReplicator(link.channel("rel"), "src", dest)
    link._sock.close()  # the connection drops
    with pytest.raises(LinkDownError):
        run_sync(replicator.transfer())
    assert dest.snapshots() == []
