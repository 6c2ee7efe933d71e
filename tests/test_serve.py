"""``xvol serve``: its options, its refusal of a bad port, and a run that builds the cluster,
announces the URL and the curl example, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import argparse

import pytest

from xvol.errors import InvalidArgumentError
from xvol.reference.access import serve
from xvol.reference.access.web import WebServer


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.configure_parser(parser)
    return parser.parse_args(list(argv))


def test_defaults() -> None:
    args = _args()
    assert (args.host, args.port, args.nodes, args.data_constituents, args.seed) == (
        "127.0.0.1",
        8080,
        2,
        4,
        0,
    )


def test_a_bad_port_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        serve.run(_args("--port", "70000"))


def test_run_serves_until_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[WebServer] = []

    def interrupted(self: WebServer) -> None:
        seen.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(WebServer, "serve_forever", interrupted)
    assert serve.run(_args("--port", "0", "--nodes", "2", "--data-constituents", "3")) == 0
    out = capsys.readouterr().out
    assert f"serving vserver vs1 on {seen[0].url}" in out
    assert f"curl -X PUT --data-binary 'hello' {seen[0].url}/v1/vs1/files/hello.txt" in out
    assert seen[0].cluster.expandable("vs1").data_constituents() == [1, 2, 3]
