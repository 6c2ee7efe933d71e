"""A node's modules: the D-module serves only its own volumes and commits a consistency point
after each change, management requests create and destroy member volumes, the N-module routes by
volume table and VLDB, and a node's endpoint refuses unknown services with an error reply."""

from __future__ import annotations

import pytest

from xvol.errors import AlreadyExistsError, InvalidArgumentError
from xvol.reference.cluster.cf import (
    CFReply,
    CFRequest,
    SimulatedFabric,
    decode_reply,
    encode_request,
)
from xvol.reference.cluster.node import Node, VolumeNotHereError
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.handles import make_goid


def _node() -> Node:
    fabric = SimulatedFabric()
    node = Node("n1", AggregateStorage.memory("n1", blocks_per_disk=1024), fabric)
    fabric.attach("n1", node.endpoint)
    return node


def _create(node: Node, volume: str, member: str) -> CFReply:
    return node.dmodule.serve(
        CFRequest(
            "dmodule", volume, "admin-create", {"member": member, "repository": 3, "blocks": 128}
        )
    )


def test_dmodule_creates_serves_and_destroys_its_volumes() -> None:
    node = _node()
    assert _create(node, "v.DC1", "DC1").result == "n1.aggr0"
    with pytest.raises(AlreadyExistsError):
        _create(node, "v.DC1", "DC1")
    goid = make_goid(3, 1)
    cps = node.dmodule.checkpoints
    node.dmodule.serve(CFRequest("dmodule", "v.DC1", "put", {"goid": goid}, b"abc"))
    assert node.dmodule.checkpoints == cps + 1  # an acknowledged change is in the blocks
    reply = node.dmodule.serve(
        CFRequest("dmodule", "v.DC1", "read", {"goid": goid, "offset": 0, "size": 9})
    )
    assert reply.payload == b"abc" and node.dmodule.checkpoints == cps + 1
    with pytest.raises(VolumeNotHereError):
        node.dmodule.serve(CFRequest("dmodule", "elsewhere", "read", {}))
    node.dmodule.remount({"v.DC1": {"member": "DC1", "repository": 3}})
    reply = node.dmodule.serve(
        CFRequest("dmodule", "v.DC1", "read", {"goid": goid, "offset": 0, "size": 9})
    )
    assert reply.payload == b"abc"
    node.dmodule.serve(CFRequest("dmodule", "v.DC1", "admin-destroy"))
    assert node.storage.volume_ids() == [] and node.dmodule.volumes == {}
    with pytest.raises(InvalidArgumentError):
        node.dmodule.serve(CFRequest("dmodule", "v", "admin-explode"))


def test_the_endpoint_dispatches_by_service_and_replies_with_typed_errors() -> None:
    node = _node()
    ping = decode_reply(node.endpoint(encode_request(CFRequest("ping", "", "ping"))))
    assert ping.result == "n1" and node.pings == 1
    bad = decode_reply(node.endpoint(encode_request(CFRequest("telnet", "", "x"))))
    assert bad.error_type == "InvalidArgumentError"
    missing = decode_reply(node.endpoint(encode_request(CFRequest("dmodule", "v9", "read"))))
    assert missing.error_type == "VolumeNotHereError"
