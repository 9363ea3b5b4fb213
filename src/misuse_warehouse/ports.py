"""Local TCP ports for the services the project starts (embedded Postgres, Airflow, Redis)."""

from __future__ import annotations

import socket


def free_port(preferred: int = 0) -> int:
    """`preferred` if nothing on this machine holds it, else a port the OS picks as free."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
