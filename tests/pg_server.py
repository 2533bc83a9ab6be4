"""A throw-away PostgreSQL server for tests and benchmarks, started from the machine's binaries.

``initdb`` + ``pg_ctl`` in a fresh temporary directory; the server listens on a Unix socket only
(``listen_addresses=''``), trusts local connections, and is stopped and deleted on :meth:`stop`.
PostgreSQL refuses to run as root, so when this process is root the server runs as the
``postgres`` user (Debian's package creates it) or else ``nobody``, through ``runuser``; the
temporary directory is theirs, and its socket folder is one this process can reach.

Binaries: ``MPT_PG_BIN`` (a folder), else ``initdb`` on PATH, else the newest
``/usr/lib/postgresql/*/bin`` (where Debian's ``postgresql`` package puts them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROLE = "mpt"
INSTALL_HINT = "install PostgreSQL's server binaries (Debian: apt-get install postgresql) or set MPT_PG_BIN"


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None."""
    if os.environ.get("MPT_PG_BIN"):
        return Path(os.environ["MPT_PG_BIN"])
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: _version(p.parent.parent.name))
    return versions[-1].parent if versions else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(".") if x.isdigit())


def unavailable_reason() -> str | None:
    """Why a local PostgreSQL cannot be started here (None when it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the PostgreSQL store needs psycopg: pip install 'mpt-serve[postgres]' (psycopg[binary])"
    bin_dir = find_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists() or not (bin_dir / "pg_ctl").exists():
        return f"no PostgreSQL server binaries (initdb, pg_ctl) found: {INSTALL_HINT}"
    if os.geteuid() == 0 and _server_user() is None:
        return "running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as"
    return None


def _server_user() -> str | None:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    return None


class LocalPostgres:
    """One PostgreSQL server in a temporary directory; :meth:`new_database` hands out fresh databases."""

    def __init__(self, bin_dir: Path | None = None, settings: dict[str, str] | None = None):
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self.bin = bin_dir or find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="mpt-pg-"))
        self.data, self.sock, self.log = self.root / "data", self.root / "sock", self.root / "server.log"
        self.user = _server_user() if os.geteuid() == 0 else None
        self.settings = {
            "listen_addresses": "''",  # Unix socket only
            "unix_socket_directories": f"'{self.sock}'",
            "max_connections": "300",
            "fsync": "off",  # a test server: its host does not crash under it; clients may (kill -9)
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            **(settings or {}),
        }
        self._names = itertools.count()
        self._started = False

    # ---- life ----------------------------------------------------------------------------------
    def start(self) -> LocalPostgres:
        self.sock.mkdir(parents=True)
        os.chmod(self.root, 0o755)  # the server user enters; its socket folder is reachable by us
        if self.user is not None:
            uid, gid = pwd.getpwnam(self.user)[2:4]
            for p in (self.root, self.sock):
                os.chown(p, uid, gid)
        self._run(self.bin / "initdb", "-D", self.data, "-U", ROLE, "--auth=trust", "--encoding=UTF8", "--no-sync")
        opts = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "-t", "60", "start")
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, *argv, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in argv]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}")
        return proc

    # ---- databases -----------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        """A store URL for ``database`` over the Unix socket."""
        return f"postgresql://{ROLE}@/{database}?host={self.sock}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database; returns its store URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.split("/", 3)[3].split("?", 1)[0]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def local_postgres(**kw) -> Iterator[LocalPostgres]:
    server = LocalPostgres(**kw)
    try:
        yield server.start()
    finally:
        server.stop()
