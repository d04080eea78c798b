"""The real ASGI app (Bolt inside Starlette) under uvicorn on a free local port, for tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from bot.core.runtime import Runtime
from bot.workspaces.registry import Workspaces
from tests.support.slack_requests import PATIENCE, wait_for

# Servers told to stop and not yet waited for, with their sockets (see the end of `serve`).
_stopping: list[tuple[threading.Thread, socket.socket]] = []


def _finish_stopping() -> None:
    """Close the sockets of the servers that have stopped. One still stopping is left for a later
    call: nothing waits for it (its requests' work is over, see the end of `serve`)."""
    for thread, sock in list(_stopping):
        if not thread.is_alive():
            sock.close()
            _stopping.remove((thread, sock))


@contextmanager
def serve(
    runtime: Runtime, workspaces: Workspaces | None = None, main_app: bool = True
) -> Iterator[str]:
    """Serve the app for `runtime` (and, given them, the installed `workspaces`; without
    `main_app`, only those); yields its base URL."""
    from handlers.app import create_app, finish_work
    from handlers.slack import build_bolt
    from integrations.slack_chat import web_client

    _finish_stopping()  # the earlier tests' servers
    settings = runtime.settings
    client = web_client("xoxb-test", settings.slack_api_url)
    bolt = build_bolt(runtime, client) if main_app else None
    app = create_app(runtime, bolt, workspaces=workspaces)
    # Made as asyncio makes a listening socket for a host and port (what `arbot serve` does): a
    # socket whose protocol is left at 0 makes asyncio skip TCP_NODELAY on the connections it
    # accepts, so every answer after the first on a kept-alive connection sent its body 40 ms
    # after its head (Nagle's algorithm waiting for the client's delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=PATIENCE)
        yield f"http://127.0.0.1:{port}"
    finally:
        # What the test's requests started after their acks ends here, while the fakes it talks
        # to are still up: none of it runs on into the next test.
        finish_work(app)
        # uvicorn notices should_exit on its next tick (every 0.1 s), then sleeps 0.1 s more
        # while it shuts down: nothing waits for that, here or in the next serve() (a test that
        # serves its app first would wait it out), and the last one's thread is a daemon.
        server.should_exit = True
        _stopping.append((thread, sock))
