"""``xvol serve``: the web service (named and raw object access) on an embedded cluster.

Builds a seeded in-process cluster (``--nodes`` nodes, one vserver ``vs1`` admitting the users
``root`` and ``guest``, an expandable volume with ``--data-constituents`` data constituents
spread over the nodes) and serves :mod:`xvol.reference.access.web` on ``--host``/``--port`` until
interrupted. The cluster lives in memory: stopping the server forgets it.

Example (another shell)::

    curl -X PUT --data-binary 'hello' http://127.0.0.1:8080/v1/vs1/files/hello.txt
    curl -i http://127.0.0.1:8080/v1/vs1/files/hello.txt          # X-Object-Id: <goid>
    curl -i http://127.0.0.1:8080/v1/vs1/objects/<goid>           # the same bytes, raw access

Uses: argparse; the cluster and the web service (imported only when the command runs).
"""

from __future__ import annotations

import argparse

from xvol.errors import InvalidArgumentError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``xvol serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument("--nodes", type=int, default=2, help="cluster nodes (default 2)")
    parser.add_argument(
        "--data-constituents",
        type=int,
        default=4,
        help="data constituents of the expandable volume (default 4)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the cluster (default 0)")


def run(args: argparse.Namespace) -> int:
    """Build the cluster and serve until interrupted."""
    from xvol.reference.access.web import WebServer  # heavy: only when serving
    from xvol.reference.cluster.cluster import build_cluster

    if not 0 <= args.port <= 65535:
        raise InvalidArgumentError("--port must be in 0..65535")
    print(
        f"xvol serve: nodes={args.nodes} data-constituents={args.data_constituents} "
        f"seed={args.seed}",
        flush=True,
    )
    cluster = build_cluster(
        nodes=args.nodes,
        data_constituents=args.data_constituents,
        seed=args.seed,
        vservers=("vs1",),
        users=("root", "guest"),
    )
    server = WebServer(cluster, args.host, args.port, quiet=False)
    print(f"serving vserver vs1 on {server.url}  (Ctrl-C stops)", flush=True)
    print(f"  curl -X PUT --data-binary 'hello' {server.url}/v1/vs1/files/hello.txt", flush=True)
    print(f"  curl -i {server.url}/v1/vs1/files/hello.txt", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server.server_close()
    return 0
