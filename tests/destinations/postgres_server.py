"""A throw-away PostgreSQL cluster for the tests: initdb + pg_ctl from Debian's binaries into a temp dir, on a
free port of 127.0.0.1, so the tests own its lifecycle and never touch a system cluster."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "posthog_test"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or no way to run them (root without a `postgres` user)."""


def find_bin_dir() -> Path:
    """Newest /usr/lib/postgresql/<major>/bin holding initdb (what `./dev test` installs with apt-get)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise PostgresUnavailable("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None  # root cannot run initdb/postgres: the binaries then run as this user

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def _run(self, *args: str) -> None:
        done = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = find_bin_dir()
        run_as = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server") from None
            run_as = user.pw_name
        root = Path(tempfile.mkdtemp(prefix="posthog-dlt-pg-"))
        if run_as:
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(bin_dir, root, free_port(), run_as)
        data = str(root / "data")
        cluster._run(str(bin_dir / "initdb"), "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                     "--locale=C", "--no-sync")
        # Durability off: a test cluster, and the suite's time matters more than crash safety.
        options = (f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        cluster._run(str(bin_dir / "pg_ctl"), "-D", data, "-o", options, "-l", str(root / "server.log"), "-w",
                     "-t", "60", "start")
        return cluster

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                                 "-w", "stop"), capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:unused@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database (one per test, so tests never see each other's tables); returns its DSN."""
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.dsn())) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)
