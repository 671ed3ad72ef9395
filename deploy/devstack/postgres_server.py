"""A real PostgreSQL cluster (Debian's binaries) on a free port, made once with initdb and reused after.

PostgreSQL refuses to run as root. Developers' machines and CI here run as root, so in that case initdb and
postgres run as the `postgres` system user (else `nobody`), the cluster is chowned to it, and when that user
cannot reach the data directory (an ancestor such as /root or a 0700 temp dir is not traversable) the cluster
lives under /var/tmp/auction-pg-<hash of the data directory> instead, which a log line says.

`kill()`, `pause()` and `resume()` (from `ServerProcess`) reach the postmaster and every process it forked:
the backends and auxiliary processes leave the postmaster's process group (each calls setsid), so a
freeze of the group alone left open connections answering, and a kill of the group alone left backends
holding the shared memory that the restart's crash recovery needs.

Access is `trust` for the superuser role `auction`, over TCP on 127.0.0.1 only (no Unix socket): fine for a
local stack, never for anything else.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import pwd
import shutil
import signal
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from devstack.child import ChildProcess
from devstack.errors import DevstackError, MissingBinaryError, StartError
from devstack.ports import free_port
from devstack.server_base import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ROLE = "auction"
DATABASE = "auction"
RELOCATION_ROOT = Path("/var/tmp")


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in bin_dir.parent.name.split("."))
    except ValueError:
        return (0,)


def postgres_bin_dir() -> Path:
    """The directory holding both `initdb` and `postgres`: PATH first, then the highest Debian version."""
    path_dirs = [Path(d) for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    debian_dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for candidate in (*path_dirs, *debian_dirs):
        initdb = candidate / "initdb"
        if initdb.is_file() and os.access(initdb, os.X_OK) and (candidate / "postgres").is_file():
            return candidate
    raise MissingBinaryError("PostgreSQL (initdb, postgres) is not installed: run `make setup`")


def unprivileged_account() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as when we are root (None when we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise DevstackError("running as root, but there is no `postgres` or `nobody` user to run PostgreSQL as")


def traversable_by(path: Path, account: pwd.struct_passwd) -> bool:
    """Whether `account` may traverse `path` and every directory above it (the execute bit that applies)."""
    for directory in (path, *path.parents):
        if not directory.exists():
            continue  # we will create it, with the usual 0755
        mode = directory.stat()
        if mode.st_uid == account.pw_uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid == account.pw_gid:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for parent, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            os.chown(os.path.join(parent, entry), uid, gid, follow_symlinks=False)


class PostgresServer(ServerProcess):
    """`postgres` on 127.0.0.1 with a database `auction` owned by superuser `auction`; see `dsn`."""

    name = "postgres"
    ready_text = "database system is ready to accept connections"
    # SIGTERM is a "smart" shutdown that waits for every client to leave; SIGINT is the fast, clean one.
    stop_signal = signal.SIGINT

    @property
    def dsn(self) -> str:
        """postgresql:// DSN of the `auction` database."""
        return f"postgresql://{ROLE}@{self.host}:{self.port}/{DATABASE}"

    @functools.cached_property
    def account(self) -> pwd.struct_passwd | None:
        """Who runs initdb/postgres: None means the current user."""
        return unprivileged_account()

    @functools.cached_property
    def cluster_dir(self) -> Path:
        """Where the cluster lives: `<data_dir>/pgdata`, or under /var/tmp when the account can't reach it."""
        account = self.account
        if account is None or traversable_by(self.data_dir.parent, account):
            return self.data_dir / "pgdata"
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return RELOCATION_ROOT / f"auction-pg-{digest}"

    @property
    def relocated(self) -> bool:
        """True when the cluster is kept outside the data directory (root, unreachable ancestors)."""
        return self.cluster_dir.parent != self.data_dir

    def _pick_ports(self) -> None:
        self.port = free_port(self.host)

    def _credentials(self) -> tuple[int | None, int | None]:
        account = self.account
        return (None, None) if account is None else (account.pw_uid, account.pw_gid)

    def _env(self) -> Mapping[str, str]:
        # English, unlocalised messages: the ready line is matched literally.
        return {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def _cwd(self) -> Path:
        return Path("/")  # initdb and postgres as another user may not be able to enter our cwd

    def _command(self) -> Sequence[str]:
        return [
            str(postgres_bin_dir() / "postgres"),
            "-D", str(self.cluster_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", "unix_socket_directories=",
            "-c", "fsync=on",
            "-c", "logging_collector=off",
        ]  # fmt: skip

    async def _prepare(self) -> None:
        await super()._prepare()
        cluster = self.cluster_dir
        account = self.account
        if self.relocated:
            self._note(
                f"{account.pw_name if account else 'we'} cannot traverse the directories above "
                f"{self.data_dir}; keeping the cluster in {cluster} instead"
            )
        cluster.mkdir(mode=0o700, parents=True, exist_ok=True)
        cluster.chmod(0o700)
        if account is not None:
            if not self.relocated:
                os.chown(self.data_dir, account.pw_uid, account.pw_gid)
            if cluster.stat().st_uid != account.pw_uid:
                _chown_tree(cluster, account.pw_uid, account.pw_gid)
        if not (cluster / "PG_VERSION").exists():
            await self._initdb()

    async def _initdb(self) -> None:
        uid, gid = self._credentials()
        argv = [
            str(postgres_bin_dir() / "initdb"),
            f"--pgdata={self.cluster_dir}",
            f"--username={ROLE}",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]
        child = ChildProcess(
            "initdb",
            argv,
            env=self._env(),
            cwd=self._cwd(),
            log_path=self.log_path,
            sink=self.sink,
            user=uid,
            group=gid,
        )
        await child.spawn()
        try:
            returncode = await asyncio.wait_for(child.wait(), timeout=self.start_timeout * 4)
        except TimeoutError:
            await child.terminate(signal.SIGKILL)
            raise StartError("initdb", "did not finish in time (killed)", child.tail()) from None
        if returncode != 0:
            raise StartError("initdb", f"failed (exit status {returncode})", child.tail())

    async def _after_ready(self) -> None:
        """Prove the server answers a real query, creating the `auction` database on first boot."""
        timeout = self.start_timeout
        admin = await asyncpg.connect(
            host=self.host, port=self.port, user=ROLE, database="postgres", timeout=timeout
        )
        try:
            exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await admin.execute(f'CREATE DATABASE "{DATABASE}" OWNER "{ROLE}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.dsn, timeout=timeout)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    def remove_cluster(self) -> None:
        """Delete the cluster when it lives outside the data directory (deleting data_dir covers the rest)."""
        if self.relocated:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
