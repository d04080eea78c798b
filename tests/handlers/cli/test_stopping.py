"""SIGTERM stops `arbot serve`'s HTTP server wherever it lands: before the server is made, after
it is made but before it runs, and while it serves (a real uvicorn server on a free port)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette

from handlers.cli.stopping import SigtermStop
from tests.support.slack_requests import PATIENCE


def _server() -> uvicorn.Server:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(Starlette(), host="127.0.0.1", port=port, log_config=None)
    return uvicorn.Server(config)


def _runs_until_stopped(guard: SigtermStop, server: uvicorn.Server) -> bool:
    """Runs the server off the main thread (uvicorn then installs no signal handlers of its
    own); True when it ended within PATIENCE (it normally ends at once)."""
    thread = threading.Thread(target=guard.run, args=(server,), daemon=True)
    thread.start()
    thread.join(timeout=PATIENCE)
    if thread.is_alive():
        server.should_exit = True  # do not leave it running after a failure
        thread.join(timeout=PATIENCE)
        return False
    return True


def test_a_sigterm_before_the_server_is_made_stops_it_before_it_serves() -> None:
    guard = SigtermStop()
    guard.handle()
    server = _server()
    assert _runs_until_stopped(guard, server)


def test_a_sigterm_between_making_the_server_and_running_it_stops_it() -> None:
    guard = SigtermStop()

    class SignalledWhileStarting(uvicorn.Server):
        def run(self, sockets: list[socket.socket] | None = None) -> None:
            guard.handle()  # the signal lands here: after the check, before uvicorn's handlers
            super().run(sockets)

    assert _runs_until_stopped(guard, SignalledWhileStarting(_server().config))


def test_a_sigterm_while_serving_stops_it() -> None:
    guard = SigtermStop()
    server = _server()
    thread = threading.Thread(target=guard.run, args=(server,), daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    guard.handle()
    thread.join(timeout=PATIENCE)
    assert not thread.is_alive()
