"""The dev stack itself: real servers on free ports, their life cycle, the token CLI and `devstack up`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import stat
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import asyncpg
import httpx
import jwt
import nats
import pytest
import redis.asyncio as redis_asyncio
from nats.js.api import StorageType

from devstack import redis_server as redis_server_module
from devstack import status
from devstack.errors import StartError
from devstack.ports import free_port, port_is_free
from devstack.processes import ServiceProcess, grpc_serving, http_ok
from devstack.servers import NatsServer, PostgresServer, RedisServer, ServerProcess
from devstack.services_fanout import cpu_for
from devstack.stack import UpOptions
from devstack.summary import READY_MARKER, render
from devstack.tokens import mint_token
from tests.conftest import scaled, temp_data_dir

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

REPO = Path(__file__).resolve().parents[1]
STANDARD_PORTS = {6379, 4222, 5432, 8222}
S = TypeVar("S", bound=ServerProcess)
SECRET = "test-secret-" + "x" * 40  # pyjwt warns below 32 bytes for HS256


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AUCTION_JWT_SECRET"}
    paths = [str(REPO / "deploy"), str(REPO), str(REPO / "clients")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def _descendants(root: int) -> set[int]:
    """Every live process below `root`, from /proc (children of children included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in {"Z", "X"}


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


@contextlib.asynccontextmanager
async def _redis(url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def _dedicated(kind: type[S]) -> AsyncIterator[S]:
    """A server of the test's own, for tests that restart, kill or pause it (session servers stay untouched:
    other modules may hold connections to them)."""
    with temp_data_dir(f"auction-{kind.name}-own-") as data_dir:
        server = kind(data_dir, start_timeout=scaled(30), stop_grace=scaled(10))
        try:
            await server.start()
            yield server
        finally:
            await server.stop()
            if isinstance(server, PostgresServer):
                server.remove_cluster()


# -- ports -------------------------------------------------------------------------------------------------


def test_free_port_is_bindable_and_not_a_standard_one() -> None:
    """A probed port can be bound right away and is never one of the machine's own servers' ports."""
    port = free_port()
    assert port not in STANDARD_PORTS
    assert port_is_free(port)
    with socket.create_server(("127.0.0.1", port)):
        assert not port_is_free(port)


# -- servers answer ----------------------------------------------------------------------------------------


async def test_redis_answers_ping_on_a_free_port(
    redis_server: RedisServer, redis_client: redis_asyncio.Redis
) -> None:
    """The session Redis listens on a probed port and answers PING."""
    assert redis_server.port not in STANDARD_PORTS
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert await redis_client.ping()
    assert await redis_client.config_get("appendonly") == {"appendonly": "yes"}


async def test_nats_jetstream_creates_a_file_stream(nats_server: NatsServer) -> None:
    """NATS (>= 2.10, from the wheel) accepts a JetStream stream with file storage and stores a message."""
    assert nats_server.port not in STANDARD_PORTS
    nc = await nats.connect(nats_server.url, connect_timeout=scaled(5))
    try:
        version = nc.connected_server_version
        assert (version.major, version.minor) >= (2, 10)
        js = nc.jetstream()
        name = f"T{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=name, subjects=[f"{name}.>"], storage=StorageType.FILE)
        ack = await js.publish(f"{name}.one", b"hello", headers={"Nats-Msg-Id": "m1"})
        assert ack.stream == name
        info = await js.stream_info(name)
        assert info.config.storage == StorageType.FILE
        assert info.state.messages == 1
        await js.delete_stream(name)
    finally:
        await nc.close()


async def test_postgres_answers_select_one(postgres_server: PostgresServer) -> None:
    """The session Postgres listens on a probed port and the `auction` database answers a query."""
    assert postgres_server.port not in STANDARD_PORTS
    assert postgres_server.dsn == f"postgresql://auction@127.0.0.1:{postgres_server.port}/auction"
    conn = await asyncpg.connect(postgres_server.dsn, timeout=scaled(10))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await conn.fetchval("SELECT current_setting('fsync')") == "on"
    finally:
        await conn.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when the tests run as root")
async def test_postgres_runs_unprivileged_when_we_are_root(postgres_server: PostgresServer) -> None:
    """As root, postgres runs as an unprivileged user that owns the cluster."""
    assert postgres_server.pid is not None
    uid = _uid_of(postgres_server.pid)
    assert uid != 0
    assert postgres_server.cluster_dir.stat().st_uid == uid


@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when the tests run as root")
async def test_postgres_moves_the_cluster_when_its_directory_is_unreachable() -> None:
    """Under a 0700 root directory the cluster goes to /var/tmp (postgres could not reach it) and works."""
    with temp_data_dir("auction-pg-private-") as private:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        server = PostgresServer(private / "pg", start_timeout=scaled(30))
        try:
            await server.start()
            assert server.relocated
            assert server.cluster_dir.parent == Path("/var/tmp")
            assert "keeping the cluster in" in server.log_path.read_text()
            conn = await asyncpg.connect(server.dsn, timeout=scaled(10))
            try:
                assert await conn.fetchval("SELECT 1") == 1
            finally:
                await conn.close()
        finally:
            await server.stop()
            server.remove_cluster()
        assert not server.cluster_dir.exists()


# -- life cycle ---------------------------------------------------------------------------------------------


async def test_redis_restart_keeps_data_and_port() -> None:
    """A key written before `restart()` is there after it, on the same port (AOF in the data dir)."""
    async with _dedicated(RedisServer) as server:
        port = server.port
        async with _redis(server.url) as client:
            await client.set("survivor", "yes")
        await server.restart()
        assert server.port == port
        async with _redis(server.url) as client:
            assert await client.get("survivor") == b"yes"


async def test_postgres_restart_keeps_data_and_port() -> None:
    """A committed row survives `restart()`, which reuses the cluster and the port."""
    async with _dedicated(PostgresServer) as server:
        port = server.port
        conn = await asyncpg.connect(server.dsn, timeout=scaled(10))
        try:
            await conn.execute("CREATE TABLE survivor (v bigint)")
            await conn.execute("INSERT INTO survivor VALUES (42)")
        finally:
            await conn.close()
        await server.restart()
        assert server.port == port
        conn = await asyncpg.connect(server.dsn, timeout=scaled(10))
        try:
            assert await conn.fetchval("SELECT v FROM survivor") == 42
        finally:
            await conn.close()


async def test_nats_restart_keeps_the_stream() -> None:
    """A file-stored JetStream message survives `restart()` on the same port."""
    async with _dedicated(NatsServer) as server:
        port = server.port
        nc = await nats.connect(server.url, connect_timeout=scaled(5))
        try:
            js = nc.jetstream()
            await js.add_stream(name="KEPT", subjects=["kept.>"], storage=StorageType.FILE)
            await js.publish("kept.one", b"kept")
        finally:
            await nc.close()
        await server.restart()
        assert server.port == port
        nc = await nats.connect(server.url, connect_timeout=scaled(5))
        try:
            assert (await nc.jetstream().stream_info("KEPT")).state.messages == 1
        finally:
            await nc.close()


async def test_kill_then_restart_brings_the_server_back() -> None:
    """`kill()` is a SIGKILL (the process is gone), and `restart()` serves again on the same port."""
    async with _dedicated(RedisServer) as server:
        pid, port = server.pid, server.port
        assert pid is not None
        server.kill()
        assert await asyncio.wait_for(server.wait(), scaled(10)) == -signal.SIGKILL
        assert not _alive(pid)
        await server.restart()
        assert server.port == port
        async with _redis(server.url) as client:
            assert await client.ping()


async def test_pause_stops_answers_until_resume() -> None:
    """While paused (SIGSTOP) the server answers nothing; after `resume()` it answers again."""
    async with _dedicated(RedisServer) as server, _redis(server.url) as client:
        assert await client.ping()
        server.pause()
        try:
            async with _redis(server.url) as stalled:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(stalled.ping(), scaled(0.5))
        finally:
            server.resume()
        async with _redis(server.url) as again:
            assert await asyncio.wait_for(again.ping(), scaled(5))


async def test_stop_works_on_a_paused_server() -> None:
    """`stop()` on a paused server still shuts it down gracefully (SIGCONT follows the stop signal)."""
    async with _dedicated(RedisServer) as server:
        server.pause()
        await asyncio.wait_for(server.stop(), scaled(10))
        assert await server.wait() == 0


async def test_stop_ends_the_process() -> None:
    """After `stop()` the server process no longer exists."""
    async with _dedicated(RedisServer) as server:
        pid = server.pid
        assert pid is not None
    assert not server.running
    assert not _alive(pid)


async def test_start_retries_on_another_port_when_the_bind_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the probed port is taken before the server binds it, start() retries on a fresh port."""
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        taken: int = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(
            redis_server_module, "free_port", lambda host="127.0.0.1": next(ports, free_port(host))
        )
        async with _dedicated(RedisServer) as server:
            assert server.port != taken
            assert "retrying on another port" in server.log_path.read_text()
            async with _redis(server.url) as client:
                assert await client.ping()


async def test_early_exit_raises_start_error_with_the_output() -> None:
    """A server that exits before it is ready raises StartError quoting its last output lines."""

    class BrokenRedis(RedisServer):
        def _command(self) -> Sequence[str]:
            return [*super()._command(), "--no-such-option", "1"]

    with temp_data_dir("auction-redis-broken-") as data_dir:
        server = BrokenRedis(data_dir, start_timeout=scaled(10))
        with pytest.raises(StartError, match="exited before it was ready") as caught:
            await server.start()
        assert any("no-such-option" in line for line in caught.value.tail)
        assert not server.running


# -- our services as child processes -----------------------------------------------------------------------

_HTTP_SERVICE = """
import http.server, os, time
time.sleep(0.3)  # not ready at once: the helper must poll, not assume

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

print("fake http service starting", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["FAKE_PORT"])), Handler).serve_forever()
"""

_GRPC_SERVICE = """
import os
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port("127.0.0.1:" + os.environ["FAKE_PORT"])
server.start()
server.wait_for_termination()
"""


def _fake_service(tmp_path: Path, module: str, source: str, port: int) -> dict[str, str]:
    (tmp_path / f"{module}.py").write_text(source)
    return {"PYTHONPATH": str(tmp_path), "FAKE_PORT": str(port)}


async def test_service_process_polls_http_readiness_then_stops(tmp_path: Path) -> None:
    """ServiceProcess returns from start() once GET /readyz is 200, and stop() ends the process."""
    port = free_port()
    env = _fake_service(tmp_path, "fake_http_service", _HTTP_SERVICE, port)
    service = ServiceProcess(
        "fake-http", "fake_http_service", env, http_ok(f"http://127.0.0.1:{port}/readyz"),
        start_timeout=scaled(30), stop_grace=scaled(5), log_path=tmp_path / "fake.log",
    )  # fmt: skip
    async with service:
        pid = service.pid
        assert pid is not None
        assert await http_ok(f"http://127.0.0.1:{port}/readyz")()
        assert not await http_ok(f"http://127.0.0.1:{port}/nope")()
    assert not service.running
    assert not _alive(pid)
    assert "fake http service starting" in (tmp_path / "fake.log").read_text()


async def test_service_process_waits_for_grpc_serving(tmp_path: Path) -> None:
    """grpc_serving() is false with nobody listening and true once the health service says SERVING."""
    port = free_port()
    assert not await grpc_serving(f"127.0.0.1:{port}", probe_timeout=scaled(0.5))()
    env = _fake_service(tmp_path, "fake_grpc_service", _GRPC_SERVICE, port)
    service = ServiceProcess(
        "fake-grpc", "fake_grpc_service", env, grpc_serving(f"127.0.0.1:{port}"), start_timeout=scaled(30)
    )
    async with service:
        assert await grpc_serving(f"127.0.0.1:{port}")()
    assert service.returncode is not None


async def test_service_process_reports_an_early_exit(tmp_path: Path) -> None:
    """A service that dies before it is ready raises StartError quoting its output, without waiting out the
    timeout."""
    (tmp_path / "fake_dying_service.py").write_text("print('boom: no config')\nraise SystemExit(3)\n")
    service = ServiceProcess(
        "fake-dying", "fake_dying_service", {"PYTHONPATH": str(tmp_path)}, http_ok("http://127.0.0.1:1/"),
        start_timeout=scaled(60),
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(StartError, match="exit status 3") as caught:
        await service.start()
    assert time.monotonic() - started < scaled(30)
    assert "boom: no config" in caught.value.tail


# -- summary ---------------------------------------------------------------------------------------------


def test_summary_says_how_to_get_tokens_and_try_the_api() -> None:
    """The summary names every endpoint, the token commands and a bid example."""
    endpoints = {
        "edge": "http://127.0.0.1:8080",
        "bidder": "127.0.0.1:5001",
        "redis": "redis://127.0.0.1:5002/0",
        "nats": "nats://127.0.0.1:5003",
        "nats_monitor": "http://127.0.0.1:5004",
        "postgres": "postgresql://auction@127.0.0.1:5005/auction",
    }
    text = render(UpOptions(state_dir=Path(".state")), endpoints, secret_from_env=False)
    assert READY_MARKER in text
    for where in endpoints.values():
        assert where in text
    assert "-m devstack.tokens --sub alice --role bidder\n" in text
    assert "-m devstack.tokens --sub admin --role admin\n" in text
    assert "http://127.0.0.1:8080/items/$ITEM_ID/bid" in text


def test_status_shows_each_process_and_fails_on_a_restart_or_a_crash_loop(tmp_path: Path) -> None:
    """`devstack status` prints one row per process; it exits 0 only when all run and none crash-loops, and
    2 when no stack is up there."""
    running = {"state": "running", "crash_loop": False, "pid": 11, "restarts": 0, "last_exit": None}
    looping = {
        "state": "restarting", "crash_loop": True, "pid": None, "restarts": 7,
        "last_exit": "exited unexpectedly (exit status 1)", "last_exit_at": "2026-12-03T15:00:00.000Z",
    }  # fmt: skip
    table, healthy = status.render({"redis": running, "relay": looping})
    assert healthy is False
    rows = table.splitlines()
    assert rows[0].split() == ["process", "state", "pid", "restarts", "last", "exit"]
    assert rows[1].split() == ["redis", "running", "11", "0"]
    assert rows[2].split()[:6] == ["relay", "restarting", "CRASH", "LOOP", "-", "7"]
    assert rows[2].endswith("exited unexpectedly (exit status 1) at 2026-12-03T15:00:00.000Z")
    assert status.render({"redis": running})[1] is True
    (tmp_path / "status.json").write_text(json.dumps({"processes": {"redis": running}}))
    assert status.show(tmp_path)[1] == 0
    assert status.show(tmp_path / "nothing")[1] == 2


# -- tokens -------------------------------------------------------------------------------------------------


def test_mint_token_verifies_with_the_same_secret() -> None:
    """A minted token decodes with the secret and carries sub, role, iat and an exp ttl seconds ahead."""
    before = int(time.time())
    token = mint_token(SECRET, "alice", "admin", 120)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp", "iat", "sub"]})
    assert claims["sub"] == "alice"
    assert claims["role"] == "admin"
    assert before + 120 <= claims["exp"] <= int(time.time()) + 120
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-" + "y" * 40, algorithms=["HS256"])


@pytest.mark.parametrize(("sub", "role"), [("alice", "root"), ("", "bidder"), ("a b", "bidder")])
def test_mint_token_refuses_bad_claims(sub: str, role: str) -> None:
    """Roles outside {bidder, admin} and subs outside the contract's alphabet are refused."""
    with pytest.raises(ValueError, match=r"role|sub"):
        mint_token(SECRET, sub, role, 60)


async def _run(argv: Sequence[str], env: dict[str, str], cwd: Path = REPO) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), scaled(60))
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_cli_uses_secret_flag_env_then_state_file(tmp_path: Path) -> None:
    """The CLI signs with --secret, else AUCTION_JWT_SECRET, else <state-dir>/jwt-secret; none: exit 2."""
    cli = [sys.executable, "-m", "devstack.tokens", "--sub", "alice", "--role", "bidder", "--ttl", "600"]

    code, out, _ = await _run([*cli, "--secret", SECRET], _subprocess_env())
    assert code == 0
    claims = jwt.decode(out.strip(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("alice", "bidder")
    assert claims["exp"] - claims["iat"] == 600

    code, out, _ = await _run(cli, _subprocess_env(AUCTION_JWT_SECRET=SECRET))
    assert code == 0
    jwt.decode(out.strip(), SECRET, algorithms=["HS256"])

    state = tmp_path / "state"
    code, _, err = await _run([*cli, "--state-dir", str(state)], _subprocess_env())
    assert code == 2
    assert "no secret" in err
    state.mkdir()
    (state / "jwt-secret").write_text(SECRET + "\n")
    code, out, _ = await _run([*cli, "--state-dir", str(state)], _subprocess_env())
    assert code == 0
    jwt.decode(out.strip(), SECRET, algorithms=["HS256"])


# -- devstack up ---------------------------------------------------------------------------------------------


class _Up:
    """`python -m devstack up` as a subprocess, with its output collected."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def wait_for(self, marker: str, seconds: float) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(seconds):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError("devstack up ended early:\n" + "\n".join(self.lines[-40:]))
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                if marker in self.lines[-1]:
                    return

    async def finish(self, seconds: float) -> int:
        out, _ = await asyncio.wait_for(self.proc.communicate(), seconds)
        self.lines += out.decode(errors="replace").splitlines()
        assert self.proc.returncode is not None
        return self.proc.returncode


@contextlib.asynccontextmanager
async def _devstack_up(state: Path, *args: str) -> AsyncIterator[_Up]:
    """Run `up --state-dir state ...`; then kill it if needed and remove a relocated Postgres cluster."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack", "up", "--state-dir", str(state), *args,
        cwd=REPO, env=_subprocess_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    up = _Up(proc)
    try:
        yield up
    finally:
        if proc.returncode is None:
            proc.kill()  # its children die with it (PR_SET_DEATHSIG)
            await proc.communicate()
        # pytest's tmp_path is under a 0700 directory, so as root the cluster went to /var/tmp.
        PostgresServer(state / "postgres").remove_cluster()


async def test_up_servers_only_starts_then_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    """`up --servers-only` prints the summary and endpoints.json; SIGINT exits 0 and leaves no process."""
    state = tmp_path / "state"
    async with _devstack_up(state, "--servers-only") as up:
        await up.wait_for(READY_MARKER, scaled(60))
        endpoints = json.loads((state / "endpoints.json").read_text())
        async with _redis(endpoints["redis"]) as client:
            assert await client.ping()
        secret = state / "jwt-secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        children = _descendants(up.proc.pid)
        assert len(children) >= 3
        up.proc.send_signal(signal.SIGINT)
        assert await up.finish(scaled(60)) == 0, "\n".join(up.lines[-40:])
    assert not [pid for pid in children if _alive(pid)]
    assert not (state / "endpoints.json").exists()


async def _kill_postgres_and_nats_alone(up: _Up, state: Path) -> None:
    """SIGKILL the postmaster alone, while a connection's backend (holding its output pipe) lives on, and
    NATS: both come back under `up` on their ports, PostgreSQL with its committed rows."""
    endpoints = json.loads((state / "endpoints.json").read_text())
    conn = await asyncpg.connect(endpoints["postgres"], timeout=scaled(10))
    try:
        await conn.execute("CREATE TABLE survivor (v bigint)")
        await conn.execute("INSERT INTO survivor VALUES (42)")
        postmaster = next(pid for pid in _descendants(up.proc.pid) if "bin/postgres -D" in _cmdline(pid))
        os.kill(postmaster, signal.SIGKILL)
        await up.wait_for("postgres restarted", scaled(60))
    finally:
        conn.terminate()
    again = await asyncpg.connect(endpoints["postgres"], timeout=scaled(10))
    try:
        assert await again.fetchval("SELECT v FROM survivor") == 42
    finally:
        await again.close()
    nats_pid = next(pid for pid in _descendants(up.proc.pid) if "nats-server" in _cmdline(pid))
    os.kill(nats_pid, signal.SIGKILL)
    await up.wait_for("nats restarted", scaled(60))
    nc = await nats.connect(endpoints["nats"], connect_timeout=scaled(5))
    await nc.close()


async def test_up_restarts_a_server_that_dies_on_its_port_and_data(tmp_path: Path) -> None:
    """A SIGKILLed Redis is restarted by `up` on the same port with its AOF, saying so, and so are PostgreSQL
    and NATS; SIGINT still exits 0 and leaves no process behind."""
    state = tmp_path / "state"
    async with _devstack_up(state, "--servers-only") as up:
        await up.wait_for(READY_MARKER, scaled(60))
        url = json.loads((state / "endpoints.json").read_text())["redis"]
        async with _redis(url) as client:
            await client.set("survivor", "yes")  # in the kernel's hands before the reply: a kill keeps it
        redis_pids = [pid for pid in _descendants(up.proc.pid) if "redis-server" in _cmdline(pid)]
        assert len(redis_pids) == 1
        os.kill(redis_pids[0], signal.SIGKILL)
        await up.wait_for("redis restarted", scaled(60))
        assert any(
            "redis exited unexpectedly (killed by SIGKILL, exit status -9)" in line
            and "restarting in 0.5 s" in line
            for line in up.lines
        ), "\n".join(up.lines[-40:])
        async with _redis(url) as client:
            assert await client.get("survivor") == b"yes"
        await _kill_postgres_and_nats_alone(up, state)
        children = _descendants(up.proc.pid)
        up.proc.send_signal(signal.SIGINT)
        assert await up.finish(scaled(60)) == 0, "\n".join(up.lines[-40:])
    assert not [pid for pid in children if _alive(pid)]


async def test_up_refuses_a_taken_edge_port_with_a_hint(tmp_path: Path) -> None:
    """A taken --edge-port fails at once with a message that suggests another --edge-port."""
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        async with _devstack_up(tmp_path / "state", "--edge-port", str(port)) as up:
            assert await up.finish(scaled(30)) == 2
    assert any("--edge-port" in line and str(port) in line for line in up.lines)


def _has_main(package: str) -> bool:
    return importlib.util.find_spec(f"{package}.__main__") is not None


@pytest.mark.slow
@pytest.mark.skipif(
    not (_has_main("core_bidder") and _has_main("edge_gateway")),
    reason="core_bidder/__main__.py and edge_gateway/__main__.py do not exist yet",
)
async def test_up_runs_the_whole_platform_and_stops_on_sigint(tmp_path: Path) -> None:
    """Full `up`: servers, bidder and edge become ready, the summary prints; SIGINT exits 0, nothing leaks."""
    state = tmp_path / "state"
    edge_port, fanout_port = free_port(), free_port()
    async with _devstack_up(state, "--edge-port", str(edge_port), "--fanout-port", str(fanout_port)) as up:
        await up.wait_for(READY_MARKER, scaled(120))
        endpoints = json.loads((state / "endpoints.json").read_text())
        assert endpoints["edge"] == f"http://127.0.0.1:{edge_port}"
        assert endpoints["fanout"] == f"ws://127.0.0.1:{fanout_port}"
        children = _descendants(up.proc.pid)
        up.proc.send_signal(signal.SIGINT)
        assert await up.finish(scaled(60)) == 0, "\n".join(up.lines[-40:])
    assert not [pid for pid in children if _alive(pid)]


def test_fanout_processes_get_a_core_each_only_while_there_are_enough() -> None:
    """One process per allowed CPU, in order; more processes than CPUs float (pinning would crowd them)."""
    allowed = sorted(os.sched_getaffinity(0))
    assert [cpu_for(i, len(allowed)) for i in range(len(allowed))] == allowed
    assert cpu_for(0, len(allowed) + 1) is None


async def test_jetstream_fsyncs_at_least_every_second(nats_server: NatsServer) -> None:
    """Our NATS starts with jetstream.conf: acknowledged events reach the disk within a second, not 2 min."""
    async with httpx.AsyncClient() as client:
        varz = (await client.get(f"{nats_server.monitor_url}/varz")).json()
    assert varz["jetstream"]["config"]["sync_interval"] == 1_000_000_000
