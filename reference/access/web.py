"""The Web Service interface of the presentation layer: named and raw object access over HTTP.

The seed's Web Service interface "allows access to data stored in the object store via either
named object access or raw object access": named access goes through the namespace (a path), raw
access uses the system-generated global object IDs, and both reach the *same* objects. This
module is a RESTful HTTP service (Flask) over an in-process :class:`~xvol.reference.cluster.
cluster.Cluster`; every request runs as one NAS-session call of the user named by the
``X-User`` header (default ``guest``) on the vserver named in the URL, entering through the node
named by ``?node=`` (default: the first node that answers).

Routes (``<vs>`` a vserver; bodies of objects are raw bytes, everything else JSON):

==========================================  ===================================================
``GET    /v1/<vs>/files/<path>``             object bytes (``?offset=&size=``) or, for a
                                             directory, ``{"entries": [...]}``
``PUT    /v1/<vs>/files/<path>``             create (201, ``?policy=``) or replace the bytes
``PATCH  /v1/<vs>/files/<path>?offset=N``    write the body at ``N``
``DELETE /v1/<vs>/files/<path>``             delete the object
``GET    /v1/<vs>/stat/<path>``              ``{"path", "is_dir", "size", "goid", "handle"}``
``POST   /v1/<vs>/dirs/<path>``              mkdir (201); ``DELETE`` rmdir
``POST   /v1/<vs>/rename``                   ``{"source": "/a", "target": "/b"}``
``GET    /v1/<vs>/objects/<goid or handle>`` raw read by GOID (slow path) or handle (fast path)
``PATCH  /v1/<vs>/objects/<goid or handle>`` raw write at ``?offset=``
``GET    /v1/<vs>/objects/<id>/meta``        size and fresh handle
``POST   /v1/<vs>/objects/<id>/migrate``     ``{"target": k}``: move to ``DC<k>``
``GET    /v1/<vs>/volume-table``             the members of the vserver's expandable volume
``POST   /v1/<vs>/constituents``             add a data constituent (``{"node": ...}``)
``DELETE /v1/<vs>/constituents/<k>``         remove ``DC<k>`` (``?migrate=1`` moves objects)
``GET    /v1/<vs>/check``                    namespace -> OLS -> data reference report
``GET    /v1/<vs>/snapshots``                the snapshot table (with each state)
``POST   /v1/<vs>/snapshots``                take a consistent snapshot ``{"name": ...}`` (201)
``GET    /v1/<vs>/snapshots/<s>``            one row: fields A-G and its state now
``DELETE /v1/<vs>/snapshots/<s>``            delete a snapshot (row and per-volume snapshots);
                                             a held one answers 409 ``SnapshotHeldError``
``POST   /v1/<vs>/snapshots/<s>/holds``      hold it ``{"holder": "..."}`` (201, idempotent)
``DELETE /v1/<vs>/snapshots/<s>/holds/<h>``  release holder ``<h>``'s hold
``GET    /v1/<vs>/snapshots/<s>/files/<p>``  the object (or directory) as it was in snapshot
                                             ``<s>`` (name or ID); writes there answer 403
``GET    /v1/<vs>/snapshots/<s>/objects/<g>`` raw read of GOID ``<g>`` in the snapshot
``POST   /v1/<vs>/snapshots/<s>/restore``    restore the whole expandable volume to it
``POST   /v1/nodes/<node>/down`` (``/up``)   mark a node down or up
==========================================  ===================================================

Object responses carry the handle in ``X-Object-Handle``, the GOID in ``X-Object-Id`` and the path
the request took to the data (``fast`` or ``slow``) in ``X-Access-Path``.

Errors are JSON ``{"error": <class>, "message": ...}`` with a status by meaning: bad input 400,
permission (forged or foreign handles, paths outside the vserver, users not admitted) 403, not
found 404, exists or wrong state 409 (a held snapshot too: its body adds ``"snapshot"`` and
``"holders"``), too large 413, a node that does not answer 503. A failure that is not a kit
error is a bug; it is reported as JSON 500 and never for bad input. A snapshot row carries its
``holds`` (the holders' tags): holds are those of the snapshots layer
(:mod:`~xvol.reference.snapshots.snapshot_holds`), so a mirror's hold on its common base
refuses a delete here too.

Uses: Flask and werkzeug; the NAS interface, the cluster, the repository and the snapshots layer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from xvol.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    OutOfSpaceError,
    PermissionDeniedError,
    StateError,
    UnavailableError,
    XvolError,
)
from xvol.reference.access.nas import NasClient
from xvol.reference.cluster.cluster import Cluster
from xvol.reference.cluster.rdb import MemberRecord
from xvol.reference.repository.constituent import MAX_OBJECT_BYTES
from xvol.reference.repository.expandable import ExpandableVolume
from xvol.reference.repository.handles import ObjectHandle, parse_goid
from xvol.reference.snapshots.snapshot_coordinator import SnapshotJobManager
from xvol.reference.snapshots.snapshot_holds import SnapshotHeldError
from xvol.reference.snapshots.snapshot_restore import restore
from xvol.reference.snapshots.snapshot_table import SnapshotRecord
from xvol.reference.snapshots.volume_snapshots import ReadOnlySnapshotError

MAX_BODY_BYTES = 64 << 20
DEFAULT_USER = "guest"

STATUS: tuple[tuple[type[XvolError], int], ...] = (
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (StateError, 409),
    (OutOfSpaceError, 507),
    (UnavailableError, 503),
    (InvalidArgumentError, 400),
)


def status_of(error: XvolError) -> int:
    """The HTTP status that says what kind of kit error ``error`` is."""
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 400


def _error(status: int, kind: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": kind, "message": message, **extra})
    response.status_code = status
    return response


def _int_arg(name: str, default: int, high: int = MAX_OBJECT_BYTES) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 12 or int(raw) > high:
        raise InvalidArgumentError(f"query parameter {name} must be an integer in 0..{high}")
    return int(raw)


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidArgumentError("the request body must be a JSON object")
    return data


def create_app(cluster: Cluster) -> Flask:
    """The web service over ``cluster`` (one request at a time: serve it single-threaded)."""
    app = Flask("xvol")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    lock = threading.Lock()

    def session(vserver: str) -> NasClient:
        node = request.args.get("node")
        if node is not None and node not in cluster.nodes:
            raise NotFoundError(f"no node {node!r}")
        return NasClient(cluster, vserver, request.headers.get("X-User", DEFAULT_USER), node)

    def object_response(
        data: bytes, handle: ObjectHandle, xv: ExpandableVolume, fast_before: int
    ) -> Response:
        response = Response(data, mimetype="application/octet-stream")
        response.headers["X-Object-Handle"] = xv.codec.encode(handle)
        response.headers["X-Object-Id"] = f"{handle.goid:016x}"
        response.headers["X-Access-Path"] = (
            "fast" if xv.counters.fast_path > fast_before else "slow"
        )
        return response

    def handle_json(xv: ExpandableVolume, handle: ObjectHandle, **extra: Any) -> dict[str, Any]:
        return {
            "goid": f"{handle.goid:016x}",
            "handle": xv.codec.encode(handle),
            "location_id": handle.location_id,
            "policy_id": handle.policy_id,
            **extra,
        }

    def object_ref(ident: str) -> str | int:
        """A GOID (16 hex digits) or a handle text, as the URL gives it."""
        return parse_goid(ident) if len(ident) == 16 else ident

    def guarded(view: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kwargs: Any) -> Any:
            with lock:
                return view(**kwargs)

        run.__name__ = view.__name__
        return run

    # -- named access -------------------------------------------------------------------------

    @app.get("/v1/<vserver>/files/")
    @app.get("/v1/<vserver>/files/<path:path>")
    def get_file(vserver: str, path: str = "") -> Response:
        nas = session(vserver)
        xv = cluster.expandable(vserver)
        info = nas.stat("/" + path)
        if info.is_dir:
            entries = [
                {
                    "name": e.name,
                    "is_dir": e.is_dir,
                    "goid": None if e.goid is None else f"{e.goid:016x}",
                }
                for e in nas.readdir("/" + path)
            ]
            return jsonify({"path": info.path, "entries": entries})
        fast = xv.counters.fast_path
        offset, size = _int_arg("offset", 0), _int_arg("size", MAX_OBJECT_BYTES)
        data, handle = nas.read_named("/" + path, offset, size)
        return object_response(data, handle, xv, fast)

    @app.put("/v1/<vserver>/files/<path:path>")
    def put_file(vserver: str, path: str) -> tuple[Response, int]:
        nas = session(vserver)
        xv = cluster.expandable(vserver)
        body = request.get_data(cache=False)
        policy = _int_arg("policy", 0, (1 << 32) - 1)
        try:
            handle = nas.create("/" + path, body, policy)
            return jsonify(handle_json(xv, handle, size=len(body))), 201
        except AlreadyExistsError:
            info = nas.stat("/" + path)
            if info.is_dir:
                raise InvalidArgumentError(f"/{path} is a directory") from None
        handle = nas.replace("/" + path, body)
        return jsonify(handle_json(xv, handle, size=len(body))), 200

    @app.patch("/v1/<vserver>/files/<path:path>")
    def patch_file(vserver: str, path: str) -> Response:
        nas = session(vserver)
        xv = cluster.expandable(vserver)
        handle = nas.write("/" + path, request.get_data(cache=False), _int_arg("offset", 0))
        return jsonify(handle_json(xv, handle))

    @app.delete("/v1/<vserver>/files/<path:path>")
    def delete_file(vserver: str, path: str) -> Response:
        goid = session(vserver).unlink("/" + path)
        return jsonify({"deleted": "/" + path, "goid": f"{goid:016x}"})

    @app.get("/v1/<vserver>/stat/")
    @app.get("/v1/<vserver>/stat/<path:path>")
    def stat(vserver: str, path: str = "") -> Response:
        nas = session(vserver)
        xv = cluster.expandable(vserver)
        info = nas.stat("/" + path)
        body: dict[str, Any] = {"path": info.path, "is_dir": info.is_dir, "size": info.size}
        if info.handle is not None:
            body.update(handle_json(xv, info.handle))
        return jsonify(body)

    @app.post("/v1/<vserver>/dirs/<path:path>")
    def mkdir(vserver: str, path: str) -> tuple[Response, int]:
        session(vserver).mkdir("/" + path)
        return jsonify({"created": "/" + path}), 201

    @app.delete("/v1/<vserver>/dirs/<path:path>")
    def rmdir(vserver: str, path: str) -> Response:
        session(vserver).rmdir("/" + path)
        return jsonify({"removed": "/" + path})

    @app.post("/v1/<vserver>/rename")
    def rename(vserver: str) -> Response:
        nas = session(vserver)
        body = _json_body()
        source, target = body.get("source"), body.get("target")
        if not isinstance(source, str) or not isinstance(target, str):
            raise InvalidArgumentError('rename needs {"source": "/path", "target": "/path"}')
        nas.rename(source, target)
        return jsonify({"source": source, "target": target})

    # -- raw access ---------------------------------------------------------------------------

    @app.get("/v1/<vserver>/objects/<ident>")
    def get_object(vserver: str, ident: str) -> Response:
        nas = session(vserver)
        xv = cluster.expandable(vserver)
        fast = xv.counters.fast_path
        data, handle = nas.read_object(
            object_ref(ident), _int_arg("offset", 0), _int_arg("size", MAX_OBJECT_BYTES)
        )
        return object_response(data, handle, xv, fast)

    @app.patch("/v1/<vserver>/objects/<ident>")
    def patch_object(vserver: str, ident: str) -> Response:
        nas = session(vserver)
        handle = nas.write_object(
            object_ref(ident), _int_arg("offset", 0), request.get_data(cache=False)
        )
        return jsonify(handle_json(cluster.expandable(vserver), handle))

    @app.get("/v1/<vserver>/objects/<ident>/meta")
    def object_meta(vserver: str, ident: str) -> Response:
        size, handle = session(vserver).stat_object(object_ref(ident))
        return jsonify(handle_json(cluster.expandable(vserver), handle, size=size))

    @app.post("/v1/<vserver>/objects/<ident>/migrate")
    def migrate(vserver: str, ident: str) -> Response:
        nas = session(vserver)
        target = _json_body().get("target")
        if isinstance(target, bool) or not isinstance(target, int):
            raise InvalidArgumentError('migrate needs {"target": <data constituent number>}')
        handle = nas.migrate(object_ref(ident), target)
        return jsonify(handle_json(cluster.expandable(vserver), handle))

    # -- management ---------------------------------------------------------------------------

    def member_json(member: MemberRecord) -> dict[str, Any]:
        return {**member.to_json(), "node": cluster.replica().get("vldb", member.volume_id)["node"]}

    @app.get("/v1/<vserver>/volume-table")
    def table(vserver: str) -> Response:
        session(vserver)
        xv = cluster.expandable(vserver)
        record = cluster.record(vserver, xv.name)
        return jsonify(
            {
                "vserver": vserver,
                "expandable_volume": xv.name,
                "members": [member_json(m) for m in record.members],
            }
        )

    @app.post("/v1/<vserver>/constituents")
    def add_constituent(vserver: str) -> tuple[Response, int]:
        session(vserver)
        xv = cluster.expandable(vserver)
        body = request.get_json(silent=True) or {}
        node = body.get("node") if isinstance(body, dict) else None
        if node is not None and not isinstance(node, str):
            raise InvalidArgumentError("node must be a node name")
        k = cluster.mhost().add_data_constituent(vserver, xv.name, node=node)
        return jsonify({"added": k, "data_constituents": xv.data_constituents()}), 201

    @app.delete("/v1/<vserver>/constituents/<int:k>")
    def remove_constituent(vserver: str, k: int) -> Response:
        session(vserver)
        xv = cluster.expandable(vserver)
        moved = cluster.mhost().remove_data_constituent(
            vserver, xv.name, k, migrate=request.args.get("migrate") in ("1", "true")
        )
        return jsonify({"removed": k, "moved": moved, "data_constituents": xv.data_constituents()})

    @app.get("/v1/<vserver>/check")
    def check(vserver: str) -> Response:
        session(vserver)
        report = cluster.expandable(vserver).check_references()
        return jsonify(
            {
                "ok": report.ok,
                "names": report.names,
                "objects": report.objects,
                "dangling_names": len(report.dangling_names),
                "dangling_locations": len(report.dangling_locations),
                "orphan_objects": len(report.orphan_objects),
                "unnamed_objects": len(report.unnamed_objects),
            }
        )

    # -- consistent snapshots -----------------------------------------------------------------

    def snapshot_ref(ref: str) -> str | int:
        """A snapshot name, or its ID (names are never all digits)."""
        return int(ref) if ref.isdigit() and len(ref) <= 10 else ref

    def snapshot_json(manager: SnapshotJobManager, record: SnapshotRecord) -> dict[str, Any]:
        holds = manager.holds(record.vserver, record.volume, record.snapshot_id)
        return {
            **record.to_json(),
            "state": manager.state(record).value,
            "holds": [h.holder for h in holds],
        }

    def snapshots_of(vserver: str) -> tuple[SnapshotJobManager, str]:
        session(vserver)
        return SnapshotJobManager(cluster), cluster.expandable(vserver).name

    @app.get("/v1/<vserver>/snapshots")
    def list_snapshots(vserver: str) -> Response:
        manager, volume = snapshots_of(vserver)
        rows = [snapshot_json(manager, r) for r in manager.snapshots(vserver, volume)]
        return jsonify({"vserver": vserver, "volume": volume, "snapshots": rows})

    @app.post("/v1/<vserver>/snapshots")
    def create_snapshot(vserver: str) -> tuple[Response, int]:
        manager, volume = snapshots_of(vserver)
        body = _json_body()
        name, clients = body.get("name"), body.get("allowed_clients")
        if not isinstance(name, str):
            raise InvalidArgumentError('a snapshot needs {"name": "..."}')
        if clients is not None and not (
            isinstance(clients, list) and all(isinstance(c, str) for c in clients)
        ):
            raise InvalidArgumentError("allowed_clients must be a list of user names")
        record = manager.create(vserver, volume, name, allowed_clients=clients)
        return jsonify(snapshot_json(manager, record)), 201

    @app.get("/v1/<vserver>/snapshots/<ref>")
    def get_snapshot(vserver: str, ref: str) -> Response:
        manager, volume = snapshots_of(vserver)
        return jsonify(snapshot_json(manager, manager.get(vserver, volume, snapshot_ref(ref))))

    @app.delete("/v1/<vserver>/snapshots/<ref>")
    def delete_snapshot(vserver: str, ref: str) -> Response:
        manager, volume = snapshots_of(vserver)
        record = manager.delete(vserver, volume, snapshot_ref(ref))
        return jsonify({"deleted": record.name, "snapshot_id": record.snapshot_id})

    @app.post("/v1/<vserver>/snapshots/<ref>/holds")
    def hold_snapshot(vserver: str, ref: str) -> tuple[Response, int]:
        manager, volume = snapshots_of(vserver)
        holder = _json_body().get("holder")
        if not isinstance(holder, str):
            raise InvalidArgumentError('a hold needs {"holder": "..."}')
        hold = manager.hold(vserver, volume, snapshot_ref(ref), holder)
        return jsonify({"snapshot": hold.name, "holder": hold.holder}), 201

    @app.delete("/v1/<vserver>/snapshots/<ref>/holds/<holder>")
    def release_snapshot(vserver: str, ref: str, holder: str) -> Response:
        manager, volume = snapshots_of(vserver)
        released = manager.release(vserver, volume, holder, snapshot_ref(ref))
        return jsonify({"released": [h.holder for h in released]})

    @app.post("/v1/<vserver>/snapshots/<ref>/restore")
    def restore_snapshot(vserver: str, ref: str) -> Response:
        _, volume = snapshots_of(vserver)
        result = restore(cluster, vserver, volume, snapshot_ref(ref))
        return jsonify({"restored": result.record.name, "members": list(result.members)})

    @app.get("/v1/<vserver>/snapshots/<ref>/files/")
    @app.get("/v1/<vserver>/snapshots/<ref>/files/<path:path>")
    def get_snapshot_file(vserver: str, ref: str, path: str = "") -> Response:
        view = session(vserver).snapshot(snapshot_ref(ref))
        info = view.stat("/" + path)
        if info.is_dir:
            entries = [
                {
                    "name": e.name,
                    "is_dir": e.is_dir,
                    "goid": None if e.goid is None else f"{e.goid:016x}",
                }
                for e in view.readdir("/" + path)
            ]
            return jsonify({"path": info.path, "snapshot": view.name, "entries": entries})
        data = view.read("/" + path, _int_arg("offset", 0), _int_arg("size", MAX_OBJECT_BYTES))
        response = Response(data, mimetype="application/octet-stream")
        response.headers["X-Object-Id"] = f"{info.goid:016x}"
        response.headers["X-Snapshot-Id"] = str(view.snapshot_id)
        return response

    @app.get("/v1/<vserver>/snapshots/<ref>/objects/<ident>")
    def get_snapshot_object(vserver: str, ref: str, ident: str) -> Response:
        view = session(vserver).snapshot(snapshot_ref(ref))
        data = view.read_object(
            parse_goid(ident), _int_arg("offset", 0), _int_arg("size", MAX_OBJECT_BYTES)
        )
        response = Response(data, mimetype="application/octet-stream")
        response.headers["X-Snapshot-Id"] = str(view.snapshot_id)
        return response

    @app.route(
        "/v1/<vserver>/snapshots/<ref>/files/<path:path>", methods=["PUT", "PATCH", "DELETE"]
    )
    @app.route("/v1/<vserver>/snapshots/<ref>/objects/<path:path>", methods=["PATCH"])
    def write_snapshot(vserver: str, ref: str, path: str) -> Response:
        view = session(vserver).snapshot(snapshot_ref(ref))
        raise ReadOnlySnapshotError(f"snapshot {view.name!r} is read-only: /{path} cannot change")

    @app.post("/v1/nodes/<node>/<state>")
    def node_state(node: str, state: str) -> Response:
        if state not in ("down", "up"):
            raise NotFoundError(f"no node action {state!r}: use down or up")
        cluster.set_node_down(cluster.node(node).name, state == "down")
        return jsonify({"node": node, "up": state == "up"})

    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = guarded(view)

    # -- errors -------------------------------------------------------------------------------

    @app.errorhandler(XvolError)
    def kit_error(error: XvolError) -> Response:
        extra: dict[str, Any] = {}
        if isinstance(error, SnapshotHeldError):
            extra = {"snapshot": error.snapshot, "holders": list(error.holders)}
        response = _error(status_of(error), type(error).__name__, str(error), **extra)
        if response.status_code == 503:
            response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return _error(error.code or 400, type(error).__name__, error.description or "")

    @app.errorhandler(Exception)
    def bug(error: Exception) -> Response:
        return _error(500, "InternalError", f"{type(error).__name__}: {error}")

    return app


class _QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class WebServer:
    """The web service on a real socket (werkzeug), served from a background thread.

    ``port=0`` picks a free port; :attr:`url` says where it listens. Single-threaded: one
    request at a time, as the cluster expects."""

    def __init__(
        self, cluster: Cluster, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
    ) -> None:
        self.cluster = cluster
        self.server: BaseWSGIServer = make_server(
            host,
            port,
            create_app(cluster),
            threaded=False,
            request_handler=_QuietHandler if quiet else None,
        )
        self.host = host
        self.port = self.server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> WebServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self.server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
