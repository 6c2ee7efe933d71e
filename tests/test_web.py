"""The web service on a real loopback HTTP server: named and raw access reach the same objects,
the README's curl example works, every bad request gets a JSON 4xx (never a 500) and changes
nothing, and a stateful test drives creates, writes, renames, deletes, migrations and
constituent changes over HTTP against a dict model."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from xvol.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    OutOfSpaceError,
    PermissionDeniedError,
    StateError,
    UnavailableError,
)
from xvol.reference.access.web import WebServer, status_of
from xvol.reference.cluster.cluster import Cluster, build_cluster
from xvol.reference.cluster.storage import AggregateStorage
from xvol.reference.repository.handles import ForgedHandleError, MalformedHandleError
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager

SMALL = 512


def _storage(node: str) -> AggregateStorage:
    return AggregateStorage.memory(node, blocks_per_disk=1024)


def _cluster(seed: int = 3) -> Cluster:
    cluster = build_cluster(
        nodes=2,
        data_constituents=2,
        seed=seed,
        volume_blocks=SMALL,
        vservers=("vs1", "vs2"),
        users=("root", "guest"),
        storage_factory=_storage,
    )
    cluster.mhost().set_users("vs2", ["alice"])
    return cluster


Reply = tuple[int, dict[str, str], bytes]


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One HTTP request; the status, headers and body (errors included)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def jcall(method: str, url: str, payload: Any) -> Reply:
    return call(method, url, json.dumps(payload).encode(), {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    with WebServer(_cluster()) as running:
        yield running


def test_curl_example_named_and_raw_access_return_the_same_object(server: WebServer) -> None:
    # curl -X PUT --data-binary 'hello' $URL/v1/vs1/files/hello.txt
    status, _, body = call("PUT", f"{server.url}/v1/vs1/files/hello.txt", b"hello")
    assert status == 201
    created = json.loads(body)
    # curl -i $URL/v1/vs1/files/hello.txt
    status, headers, data = call("GET", f"{server.url}/v1/vs1/files/hello.txt")
    assert (status, data) == (200, b"hello")
    assert headers["X-Object-Id"] == created["goid"]
    # curl -i $URL/v1/vs1/objects/<goid>
    status, headers, data = call("GET", f"{server.url}/v1/vs1/objects/{created['goid']}")
    assert (status, data, headers["X-Access-Path"]) == (200, b"hello", "slow")
    status, headers, data = call("GET", f"{server.url}/v1/vs1/objects/{created['handle']}")
    assert (status, data, headers["X-Access-Path"]) == (200, b"hello", "fast")


def test_a_migration_makes_a_kept_handle_take_the_slow_path_and_refreshes_it(
    server: WebServer,
) -> None:
    _, _, body = call("PUT", f"{server.url}/v1/vs1/files/moving", b"payload")
    handle = json.loads(body)
    target = 1 if handle["location_id"] == 2 else 2
    status, _, body = jcall(
        "POST", f"{server.url}/v1/vs1/objects/{handle['goid']}/migrate", {"target": target}
    )
    assert status == 200 and json.loads(body)["location_id"] == target
    status, headers, data = call("GET", f"{server.url}/v1/vs1/objects/{handle['handle']}")
    assert (status, data, headers["X-Access-Path"]) == (200, b"payload", "slow")
    fresh = headers["X-Object-Handle"]
    assert fresh != handle["handle"] and fresh.startswith(handle["goid"])
    _, headers, _ = call("GET", f"{server.url}/v1/vs1/objects/{fresh}")
    assert headers["X-Access-Path"] == "fast"


BAD_REQUESTS: list[tuple[str, str, bytes | None, dict[str, str], int]] = [
    ("GET", "/v1/vs1/objects/zzzz", None, {}, 400),
    ("GET", "/v1/vs1/objects/0000000000000000", None, {}, 400),
    ("GET", "/v1/vs1/objects/00ff000000000001", None, {}, 403),  # another repository
    ("GET", "/v1/vs1/objects/0001000000fffff0", None, {}, 404),  # unknown GOID
    ("GET", "/v1/vs1/objects/0001000000000001-00000001-00000000-0000000000000000", None, {}, 403),
    ("GET", "/v1/vs1/files/%2E%2E/%2E%2E/etc/passwd", None, {}, 403),
    ("GET", "/v1/vs1/files/nothing-here", None, {}, 404),
    ("GET", "/v1/vs1/files/hello.txt?offset=-1", None, {}, 400),
    ("GET", "/v1/vs1/files/hello.txt?size=abc", None, {}, 400),
    ("GET", "/v1/vs9/files/", None, {}, 404),
    ("GET", "/v1/vs2/files/", None, {}, 403),  # guest is not in vs2's security domain
    ("GET", "/v1/vs1/files/?node=node9", None, {}, 404),
    ("PUT", "/v1/vs1/files/no/such/dir/x", b"1", {}, 404),
    ("PUT", "/v1/vs1/files/" + "n" * 300, b"1", {}, 400),
    ("PUT", "/v1/vs1/files/x?policy=99999999999", b"1", {}, 400),
    ("POST", "/v1/vs1/rename", b"{not json", {"Content-Type": "application/json"}, 400),
    ("POST", "/v1/vs1/rename", b'{"source": 1}', {"Content-Type": "application/json"}, 400),
    (
        "POST",
        "/v1/vs1/objects/0001000000000001/migrate",
        b'{"target": "x"}',
        {"Content-Type": "application/json"},
        400,
    ),
    (
        "POST",
        "/v1/vs1/objects/0001000000000001/migrate",
        b'{"target": 77}',
        {"Content-Type": "application/json"},
        409,
    ),
    ("DELETE", "/v1/vs1/constituents/77", None, {}, 404),
    ("DELETE", "/v1/vs1/dirs/", None, {}, 404),
    ("PATCH", "/v1/vs1/files/missing?offset=3", b"abc", {}, 404),
    ("POST", "/v1/nodes/node9/down", None, {}, 404),
    ("POST", "/v1/nodes/node1/sideways", None, {}, 404),
    ("GET", "/nowhere", None, {}, 404),
    ("DELETE", "/v1/vs1/stat/x", None, {}, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), BAD_REQUESTS)
def test_bad_requests_get_a_json_4xx_and_change_nothing(
    server: WebServer,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
) -> None:
    call("PUT", f"{server.url}/v1/vs1/files/hello.txt", b"hello")
    before = call("GET", f"{server.url}/v1/vs1/check")[2]
    got, reply_headers, reply = call(method, server.url + path, body, headers)
    assert got == status, reply
    assert reply_headers["Content-Type"] == "application/json"
    assert set(json.loads(reply)) == {"error", "message"}
    assert call("GET", f"{server.url}/v1/vs1/check")[2] == before


def test_removing_a_constituent_that_holds_objects_is_refused(server: WebServer) -> None:
    call("PUT", f"{server.url}/v1/vs1/files/keep", b"k")
    table = call("GET", f"{server.url}/v1/vs1/volume-table")[2]
    held = json.loads(call("GET", f"{server.url}/v1/vs1/stat/keep")[2])["location_id"]
    status, _, body = call("DELETE", f"{server.url}/v1/vs1/constituents/{held}")
    assert status == 409 and json.loads(body)["error"] == "StateError"
    assert call("GET", f"{server.url}/v1/vs1/volume-table")[2] == table


def test_a_node_marked_down_gives_503_and_nothing_changes(server: WebServer) -> None:
    listing = call("GET", f"{server.url}/v1/vs1/files/")[2]
    assert call("POST", f"{server.url}/v1/nodes/node2/down")[0] == 200
    try:
        status, headers, body = call("PUT", f"{server.url}/v1/vs1/files/while-down", b"x")
        assert status == 503 and json.loads(body)["error"] == "UnavailableError"
        assert headers["Retry-After"] == "1"
    finally:
        assert call("POST", f"{server.url}/v1/nodes/node2/up")[0] == 200
    assert call("GET", f"{server.url}/v1/vs1/files/")[2] == listing


@settings(max_examples=40, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40),
    st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "POST"]),
    st.sampled_from(["files", "objects", "stat", "dirs", "constituents", "rename"]),
)
def test_fuzzed_urls_never_get_a_500(server: WebServer, junk: str, method: str, kind: str) -> None:
    path = f"/v1/vs1/{kind}/" + urllib.parse.quote(junk, safe="")
    status, headers, body = call(method, server.url + path, b"junk")
    assert status < 500 or status == 503, body
    if status >= 400:
        assert headers["Content-Type"] == "application/json"


def test_kit_errors_map_to_status_codes_by_meaning() -> None:
    assert status_of(MalformedHandleError("x")) == 400
    assert status_of(InvalidArgumentError("x")) == 400
    assert status_of(ForgedHandleError("x")) == 403
    assert status_of(PermissionDeniedError("x")) == 403
    assert status_of(NotFoundError("x")) == 404
    assert status_of(AlreadyExistsError("x")) == 409
    assert status_of(StateError("x")) == 409
    assert status_of(UnavailableError("x")) == 503
    assert status_of(OutOfSpaceError("x")) == 507


# --------------------------------------------------------------------------------------------
# The stateful test over HTTP
# --------------------------------------------------------------------------------------------

PATHS = ["a", "b", "d/x", "d/y"]


class WebMachine(RuleBasedStateMachine):
    """The web service against a dict of path -> bytes."""

    @initialize()
    def setup(self) -> None:
        self.server = WebServer(_cluster(seed=5)).start()
        self.url = self.server.url + "/v1/vs1"
        assert call("POST", f"{self.url}/dirs/d")[0] == 201
        self.model: dict[str, bytes] = {}
        self.goids: dict[str, str] = {}
        self.handles: dict[str, str] = {}

    def teardown(self) -> None:
        if hasattr(self, "server"):
            self.server.stop()

    @rule(path=st.sampled_from(PATHS), data=st.binary(max_size=200))
    def put(self, path: str, data: bytes) -> None:
        status, _, body = call("PUT", f"{self.url}/files/{path}", data)
        reply = json.loads(body)
        if path in self.model:
            assert status == 200 and reply["goid"] == self.goids[path]
        else:
            assert status == 201
            self.goids[path], self.handles[path] = reply["goid"], reply["handle"]
        self.model[path] = data

    @rule(path=st.sampled_from(PATHS), offset=st.integers(0, 3000), data=st.binary(max_size=100))
    def patch(self, path: str, offset: int, data: bytes) -> None:
        status, _, _ = call("PATCH", f"{self.url}/files/{path}?offset={offset}", data)
        if path not in self.model:
            assert status == 404
            return
        assert status == 200
        if data:
            old = self.model[path].ljust(offset, b"\x00")
            self.model[path] = old[:offset] + data + old[offset + len(data) :]

    @rule(source=st.sampled_from(PATHS), dest=st.sampled_from(PATHS))
    def rename(self, source: str, dest: str) -> None:
        status, _, _ = jcall(
            "POST", f"{self.url}/rename", {"source": "/" + source, "target": "/" + dest}
        )
        if source not in self.model:
            assert status == 404
        elif dest in self.model:
            assert status == 409
        else:
            assert status == 200
            for table in (self.model, self.goids, self.handles):
                table[dest] = table.pop(source)  # type: ignore[attr-defined]

    @rule(path=st.sampled_from(PATHS))
    def delete(self, path: str) -> None:
        status, _, _ = call("DELETE", f"{self.url}/files/{path}")
        if path not in self.model:
            assert status == 404
            return
        assert status == 200
        goid = self.goids.pop(path)
        del self.model[path], self.handles[path]
        assert call("GET", f"{self.url}/objects/{goid}")[0] == 404

    @rule(path=st.sampled_from(PATHS), pick=st.integers(0, 10))
    def migrate(self, path: str, pick: int) -> None:
        if path not in self.model:
            return
        meta = json.loads(call("GET", f"{self.url}/objects/{self.goids[path]}/meta")[2])
        table = json.loads(call("GET", f"{self.url}/volume-table")[2])["members"]
        others = [
            int(m["name"][2:])
            for m in table
            if m["role"] == "data" and m["accepting"] and int(m["name"][2:]) != meta["location_id"]
        ]
        if not others:
            return
        target = others[pick % len(others)]
        status, _, body = jcall(
            "POST", f"{self.url}/objects/{self.goids[path]}/migrate", {"target": target}
        )
        assert status == 200 and json.loads(body)["location_id"] == target

    @rule(path=st.sampled_from(PATHS))
    def read_with_kept_handle(self, path: str) -> None:
        if path not in self.model:
            return
        status, headers, data = call("GET", f"{self.url}/objects/{self.handles[path]}")
        assert status == 200 and data == self.model[path]
        meta = json.loads(call("GET", f"{self.url}/objects/{self.goids[path]}/meta")[2])
        assert headers["X-Object-Handle"] == meta["handle"]
        expected = "fast" if self.handles[path] == meta["handle"] else "slow"
        assert headers["X-Access-Path"] == expected
        self.handles[path] = headers["X-Object-Handle"]

    @rule(node=st.sampled_from(["node1", "node2"]))
    def add_constituent(self, node: str) -> None:
        table = json.loads(call("GET", f"{self.url}/volume-table")[2])["members"]
        if sum(1 for m in table if m["role"] == "data") >= 4:
            return
        status, _, body = jcall("POST", f"{self.url}/constituents", {"node": node})
        assert status == 201 and json.loads(body)["added"] in json.loads(body)["data_constituents"]

    @rule(pick=st.integers(0, 10), move=st.booleans())
    def remove_constituent(self, pick: int, move: bool) -> None:
        table = json.loads(call("GET", f"{self.url}/volume-table")[2])["members"]
        data = [int(m["name"][2:]) for m in table if m["role"] == "data"]
        k = data[pick % len(data)]
        status, _, body = call(
            "DELETE", f"{self.url}/constituents/{k}" + ("?migrate=1" if move else "")
        )
        if status == 200:
            assert k not in json.loads(body)["data_constituents"]
        else:
            assert status == 409
            assert json.loads(call("GET", f"{self.url}/volume-table")[2])["members"] == table

    @invariant()
    def named_and_raw_access_agree_with_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        for path, data in self.model.items():
            status, headers, got = call("GET", f"{self.url}/files/{path}")
            assert (status, got) == (200, data)
            assert headers["X-Object-Id"] == self.goids[path]
            assert call("GET", f"{self.url}/objects/{self.goids[path]}")[2] == data
        report = json.loads(call("GET", f"{self.url}/check")[2])
        assert report["ok"] and report["names"] == report["objects"] == len(self.model)


WebMachine.TestCase.settings = settings(max_examples=8, stateful_step_count=20, deadline=None)
TestWebMachine = WebMachine.TestCase


def test_snapshots_over_http_read_the_past_refuse_writes_and_restore() -> None:
    with WebServer(_cluster(seed=9)) as web:
        base = f"{web.url}/v1/vs1"
        assert call("PUT", f"{base}/files/doc", b"version 1")[0] == 201
        status, _, body = jcall("POST", f"{base}/snapshots", {"name": "monday"})
        row = json.loads(body)
        assert status == 201 and row["state"] == "valid" and row["snapshot_id"] == 1
        assert [v["member"] for v in row["volumes"]] == ["NS", "OLS", "DC1", "DC2"]
        assert call("PUT", f"{base}/files/doc", b"version 2")[0] == 200
        status, headers, data = call("GET", f"{base}/snapshots/monday/files/doc")
        assert (status, data, headers["X-Snapshot-Id"]) == (200, b"version 1", "1")
        goid = headers["X-Object-Id"]
        assert call("GET", f"{base}/snapshots/1/objects/{goid}")[2] == b"version 1"
        listing = json.loads(call("GET", f"{base}/snapshots/monday/files/")[2])
        assert [e["name"] for e in listing["entries"]] == ["doc"]
        for method in ("PUT", "PATCH", "DELETE"):
            status, _, body = call(method, f"{base}/snapshots/monday/files/doc", b"x")
            assert status == 403 and json.loads(body)["error"] == "ReadOnlySnapshotError"
        assert call("GET", f"{base}/snapshots/tuesday/files/doc")[0] == 404
        assert jcall("POST", f"{base}/snapshots", {"name": "a/b"})[0] == 400
        assert jcall("POST", f"{base}/snapshots", {"name": "monday"})[0] == 409
        rows = json.loads(call("GET", f"{base}/snapshots")[2])["snapshots"]
        assert [r["name"] for r in rows] == ["monday"]
        assert call("POST", f"{base}/snapshots/monday/restore")[0] == 200
        assert call("GET", f"{base}/files/doc")[2] == b"version 1"
        assert call("DELETE", f"{base}/snapshots/monday")[0] == 200
        assert call("GET", f"{base}/snapshots/monday")[0] == 404


def test_a_held_snapshot_answers_409_naming_its_holders_until_released() -> None:
    cluster = _cluster(seed=11)
    with WebServer(cluster) as web:
        base = f"{web.url}/v1/vs1"
        assert call("PUT", f"{base}/files/doc", b"kept")[0] == 201
        assert jcall("POST", f"{base}/snapshots", {"name": "base"})[0] == 201
        # a hold placed outside the web service (a mirror's, through its own job manager)
        SnapshotJobManager(cluster).hold("vs1", cluster.expandable("vs1").name, "base", "mirror")
        status, _, body = jcall("POST", f"{base}/snapshots/base/holds", {"holder": "backup"})
        assert status == 201 and json.loads(body) == {"snapshot": "base", "holder": "backup"}
        assert json.loads(call("GET", f"{base}/snapshots/base")[2])["holds"] == ["backup", "mirror"]
        status, _, body = call("DELETE", f"{base}/snapshots/base")
        error = json.loads(body)
        assert status == 409 and error["error"] == "SnapshotHeldError"
        assert error["snapshot"] == "base" and sorted(error["holders"]) == ["backup", "mirror"]
        assert "held by" in error["message"]
        assert call("GET", f"{base}/snapshots/base")[0] == 200  # nothing changed
        assert call("GET", f"{base}/snapshots/base/files/doc")[2] == b"kept"
        assert jcall("POST", f"{base}/snapshots/base/holds", {"holder": 3})[0] == 400
        assert call("DELETE", f"{base}/snapshots/base/holds/nobody")[0] == 404
        for holder in ("backup", "mirror"):
            status, _, body = call("DELETE", f"{base}/snapshots/base/holds/{holder}")
            assert status == 200 and json.loads(body) == {"released": [holder]}
        assert call("DELETE", f"{base}/snapshots/base")[0] == 200
        assert call("GET", f"{base}/snapshots/base")[0] == 404
