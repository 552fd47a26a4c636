"""A throwaway PostgreSQL server for the tests (and the catalog benchmark).

The binaries come from the ``pgserver`` wheel (PostgreSQL 16, in the ``test`` extra); the server
listens only on a unix socket in its data folder, trusts local connections and lives until
:meth:`PostgresServer.close`. PostgreSQL refuses to run as root, so under root (CI containers) it
runs as the unprivileged ``nobody`` user in a folder that user owns.

That user must also reach the binaries. They sit in the virtual environment, often inside the
checkout; when a parent folder keeps others out (a checkout under ``/root`` or in a 0700 temporary
folder), :func:`reachable_bin` copies the installation (about 35 MB) once to a cache in the
temporary folder, so where the checkout sits does not matter.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "PostgresUnavailable", "postgres_bin", "reachable_bin"]

_UNPRIVILEGED = "nobody"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here (``pgserver`` is not installed)."""


def postgres_bin() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Raises:
        PostgresUnavailable: ``pgserver`` is not installed.
    """
    # NOTE: located, not imported: importing pgserver sets up its own server management.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None or importlib.util.find_spec("psycopg") is None:
        raise PostgresUnavailable(
            "the PostgreSQL variants need the pgserver and psycopg packages: run `make setup`"
            " (or `pip install pgserver 'psycopg[binary]'`)"
        )
    return Path(spec.origin).resolve().parent / "pginstall" / "bin"


def _world_reachable(path: Path) -> bool:
    """Whether a user other than the owner can reach ``path`` (every parent folder traversable)."""
    return all(
        parent.stat().st_mode & stat.S_IXOTH for parent in [path, *path.parents] if parent.is_dir()
    )


def reachable_bin(bin_dir: Path) -> Path:
    """``bin_dir``, or a copy of its installation that the unprivileged user can run.

    Only under root, where the server runs as ``nobody``: if a parent of ``bin_dir`` keeps others
    out, the installation is copied once to ``$TMPDIR/daimm-pginstall-<uid>-<key>``, keyed by
    where it came from and when it was installed, and reused by later sessions. The copy keeps the
    wheel's layout, ``pgserver/pginstall/{bin,lib,share}`` and ``pgserver.libs`` beside it: the
    binaries find their libraries at ``$ORIGIN/../../../pgserver.libs`` and ``share`` relative to
    themselves.
    """
    if os.geteuid() != 0 or _world_reachable(bin_dir):
        return bin_dir
    install = bin_dir.parent  # .../site-packages/pgserver/pginstall
    package = install.parent
    libs = package.parent / f"{package.name}.libs"  # auditwheel's copies of shared libraries
    where = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    key = f"{where}-{int((bin_dir / 'postgres').stat().st_mtime)}"
    cache = Path(tempfile.gettempdir()) / f"daimm-pginstall-{os.geteuid()}-{key}"
    copied = cache / package.name / install.name / bin_dir.name
    # NOTE: a cache someone else made (or a symlink planted in the shared /tmp) is never used.
    if cache.is_dir() and not cache.is_symlink() and cache.stat().st_uid == os.geteuid():
        return copied
    partial = Path(tempfile.mkdtemp(prefix="daimm-pginstall-partial-"))
    try:
        shutil.copytree(install, partial / package.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        for folder in (partial, partial / package.name):
            folder.chmod(0o755)
        os.replace(partial, cache)  # atomic: a concurrent session sees all or nothing
    except OSError:
        if not cache.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # another session's copy won the race
    return copied


class PostgresServer:
    """One PostgreSQL server in a fresh temporary folder, started by :meth:`start`.

    Args:
        bin_dir: The PostgreSQL binaries; :func:`postgres_bin` when omitted.
        durable: Flush to disk like a production server (``fsync``) instead of the tests'
            ``fsync = off``; commits still return before their flush (``synchronous_commit =
            off``), the durability of the catalog's SQLite (WAL, ``synchronous=NORMAL``).
    """

    def __init__(self, bin_dir: Path | None = None, *, durable: bool = False) -> None:
        self.bin_dir = reachable_bin(bin_dir or postgres_bin())
        # NOTE: not pytest's tmp_path: that is private to root (0700), and the server may run as
        # `nobody`; /tmp is world-traversable. The socket path must stay under 107 characters.
        self.root = Path(tempfile.mkdtemp(prefix="daimm-pg-"))
        self.data = self.root / "data"
        self._user: str | None = _UNPRIVILEGED if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("max_connections = 300\nlisten_addresses = ''\n")
            if durable:
                conf.write("synchronous_commit = off\n")
            else:
                # Tests open many short-lived databases; durability is not under test there.
                conf.write("fsync = off\n")
            conf.write(f"unix_socket_directories = '{self.root}'\n")

    def _run(self, tool: str, *args: str, timeout_s: float = 60) -> str:
        done = subprocess.run(
            [str(self.bin_dir / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            user=self._user,
            cwd=self.root,
            check=False,
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}{tail}")
        return done.stdout

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "start")  # fmt: skip

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients cleanly; ``immediate``: like a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3 over the unix socket)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}"

    def execute(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in the ``postgres`` database (autocommit); rows if it returns any."""
        import psycopg

        with psycopg.connect(host=str(self.root), user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            cursor = conn.execute(sql, params or None)
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.url(name)

    def terminate_connections(self, database: str) -> int:
        """Kill every client connection to ``database`` (as if the network dropped them)."""
        rows = self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            database,
        )
        return len(rows)

    def close(self) -> None:
        """Stop the server (if running) and delete its folder."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop(mode="immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    @classmethod
    @contextlib.contextmanager
    def running(cls, *, durable: bool = False) -> Iterator[PostgresServer]:
        """A started server, closed on exit."""
        server = cls(durable=durable)
        try:
            server.start()
            yield server
        finally:
            server.close()
