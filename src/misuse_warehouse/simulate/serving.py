"""A local stand-in API served in a background thread: what the police and Fingertips stand-ins share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(handler: type[BaseHTTPRequestHandler], port: int, name: str) -> tuple[str, Callable[[], None]]:
    """Serve `handler` on 127.0.0.1 (`port` 0: any free port); the API's base URL and a stop function."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_address[1]}/api", stop
