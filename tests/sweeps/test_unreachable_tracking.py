"""A tracking server that refuses or never answers: the preflight says which in one line, after one short attempt,
before anything is written (issue 25: 6.9 s and urllib3's retry chain; issue 26: ~93 s per call to a hung one)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.helpers import Stores


@pytest.fixture
def hung_server():
    """A port that accepts connections (the kernel completes the handshake) and never answers a request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def _run(tmp_path, capsys, uri):
    stores = Stores(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    started = time.monotonic()
    code = stores.run("--tracking-uri", uri)
    seconds = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no journal, lock or database
    return err, seconds


def test_a_hung_tracking_server_is_one_line_after_one_short_wait(tmp_path, capsys, hung_server):
    err, seconds = _run(tmp_path, capsys, hung_server)
    assert err == (
        f"error: cannot use MLflow tracking store {hung_server}: no answer within 5 s (is the server hung or behind "
        "a firewall?)"
    )
    assert seconds < 60  # a hang bound, not a speed target: the old bounds took ~93 s here


def test_a_refusing_tracking_server_says_so_without_urllib3s_chain(tmp_path, capsys):
    err, _ = _run(tmp_path, capsys, "http://127.0.0.1:9")
    assert err == (
        "error: cannot use MLflow tracking store http://127.0.0.1:9: connection refused (is the server running, "
        "on this host and port?)"
    )
