"""Throwaway servers on loopback: a PostgreSQL cluster (initdb/pg_ctl in a temp dir) and an `mlflow server`.

The tests and `benchmarks/scaling.py` start real servers with these, and they are a quick way to try several
workers on one machine. Both bind 127.0.0.1 unless told otherwise. They live with the tests, not in the installed
package: a default password has no place in production, where the servers already exist (see the README's
"Running on several machines").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dqn_core.errors import ConfigError

PG_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/*/bin")
UNPRIVILEGED_USER = "nobody"  # initdb and postgres refuse to run as root


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening on {host}:{port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: $PATH first, then the Debian package layout."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    for pattern in PG_BIN_DIRS:
        for folder in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
                return folder
    return None


class PostgresCluster:
    """A private PostgreSQL cluster with password authentication, owned by an unprivileged user when run as root."""

    def __init__(self, *, user: str = "sweeper", password: str = "s3cret-pw", host: str = "127.0.0.1") -> None:
        self.bin = find_pg_bin()
        if self.bin is None:
            raise ConfigError("PostgreSQL binaries (initdb, pg_ctl) not found; install the 'postgresql' package")
        self.user, self.password, self.host = user, password, host
        self.port = free_port(host)
        # Not under pytest's tmp_path: that is private to root, and the server runs as another user.
        self.root = Path(tempfile.mkdtemp(prefix="dqn-sweep-pg-"))
        self.data = self.root / "data"
        self._as_root = os.geteuid() == 0

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_root:
            command = ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-800:]}")

    def start(self) -> PostgresCluster:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            import pwd

            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        return self.resume()

    def resume(self) -> PostgresCluster:
        """Start the server on the cluster's data (again, after `halt`: an outage that ends)."""
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")
        wait_for_port(self.host, self.port, 30)
        return self

    def halt(self) -> None:
        """Stop the server, keeping its data: an outage as clients see it. A fast shutdown, not an immediate one:
        the cluster runs with synchronous_commit=off, and a crash would lose the last commits it acknowledged."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """`mlflow server` as a child process group, so it can be stopped (an outage) and started again on its port."""

    def __init__(self, backend_store_uri: str, artifacts: Path, *, host: str = "127.0.0.1", workers: int = 1) -> None:
        self.backend_store_uri = backend_store_uri
        self.artifacts = artifacts
        self.host = host
        self.port = free_port(host)
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.log = artifacts.parent / f"mlflow-server-{self.port}.log"

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 120) -> MlflowServer:
        mlflow = Path(sys.executable).parent / "mlflow"
        command = [
            str(mlflow),
            "server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--backend-store-uri",
            self.backend_store_uri,
            "--artifacts-destination",
            str(self.artifacts),
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.host, self.port, timeout, self.process)
            self._wait_healthy(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
            time.sleep(0.3)
        raise TimeoutError(f"mlflow server at {self.uri} is not healthy after {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the server and its worker processes (they share its process group)."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
        self.process = None
