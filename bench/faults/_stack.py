"""A throwaway production topology for one fault drill: its own PostgreSQL cluster and Redis
server on free ports, real Celery worker and beat processes, and uvicorn API processes.

Nothing here touches the machine's shared Postgres (5432) or Redis (6379): the drills stop and
restart only what they started. `Stack` is a context manager; leaving it (normally, on an
exception, or on SIGTERM/SIGINT) kills every process it started and removes its folder.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_USER = "postgres"
_RECEIVED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] received")
_FINISHED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] (?!received)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    message: str,
    *,
    alive: Callable[[], None] | None = None,
    interval: float = 0.2,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None:
            alive()
        time.sleep(interval)
    raise DrillError(message)


class DrillError(RuntimeError):
    """The drill could not create its fault, or its stack failed: never reported as a pass."""


def explain(message: str, processes: Sequence[Process]) -> str:
    """`message` plus the first task failure the workers logged, if any."""
    failed = [line for p in processes for line in p.failures()]
    if not failed:
        return message
    return f"{message}; {len(failed)} task failures in the worker logs, first: {failed[0][:300]}"


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise DrillError(f"no PostgreSQL binaries under /usr/lib/postgresql/*/bin ({name})")
    return found[-1]


def _as_pg_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *command]
    return command


class Postgres:
    """One cluster of our own (initdb into `root`), trust authentication on 127.0.0.1:port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.socket_dir = root / "pgsocket"
        self.log_path = root / "postgres.log"
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(root, PG_USER)
            shutil.chown(self.socket_dir, PG_USER)
        self._run([_pg_bin("initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust", "--no-sync"])
        options = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_dir),
            "shared_buffers": "64MB",
            "max_connections": "200",
            # Commits are still acknowledged only after their WAL is written: an immediate stop
            # (a crash of the server process) loses nothing; only an OS crash would, not drilled.
            "fsync": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{key} = '{value}'\n" for key, value in options.items()))
        self.started = False

    def _run(self, command: list[str], timeout: float = 120) -> None:
        done = subprocess.run(
            _as_pg_user(command), capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if done.returncode != 0:
            raise DrillError(f"{' '.join(command[:2])} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")

    def _ctl(self, *args: str) -> None:
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), *args])

    def start(self) -> None:
        self._ctl("-w", "-t", "60", "start")
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-t", "60", "-m", mode, "stop")
        self.started = False

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={database}") as conn:
            conn.autocommit = True
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str, template: str | None = None) -> str:
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def close(self) -> None:
        if self.started or (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")


class Redis:
    """A redis-server of our own: no snapshot, no append-only file (a restart loses every
    message it held, as a broker without persistence does)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.log_path = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise DrillError("redis-server is not installed")
        out = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        wait_for(self.ping, 20, f"redis-server on {self.port} did not answer")

    def ping(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def queued(self, queues: Sequence[str]) -> int:
        """Messages waiting in `queues`. (Deliveries to a killed worker stay in kombu's `unacked`
        hash until the visibility timeout, far past a drill: the reconciler's job, not counted.)"""
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            return sum(int(client.llen(q)) for q in queues)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGKILL: the broker dies with whatever it held."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None

    def close(self) -> None:
        self.stop()


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class Process:
    """A child in its own process group (killing the group takes a prefork pool with it)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._out: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def assert_alive(self) -> None:
        if not self.alive():
            raise DrillError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def kill(self, timeout: float = 20) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        wait_for(lambda: not _group_members(self.pid), timeout, f"{self.name} survived SIGKILL")
        self._out.close()

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        if self.alive() or _group_members(self.pid):
            self.kill()
        self._out.close()

    def failures(self) -> list[str]:
        """The worker's log lines of tasks that raised (a stalled drill says why)."""
        return [line for line in self.text().splitlines() if "raised unexpected" in line]

    def in_flight(self) -> list[str]:
        """Task names this worker received since it last connected to the broker and has not
        finished (from its INFO log; what it held before a broker restart died with the broker)."""
        text = self.text().rsplit("Connected to redis://", 1)[-1]
        finished = {m.group(2) for m in _FINISHED.finditer(text)}
        return [name for name, task_id in _RECEIVED.findall(text) if task_id not in finished]


class Stack:
    """Postgres + Redis + the processes a drill starts; `env` is what every process reads."""

    def __init__(
        self, name: str, *, keep: bool = False, reconcile_seconds: float = 5.0, stuck_after: float = 15.0
    ) -> None:
        self.name = name
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix=f"aa-fault-{name}-"))
        self.root.chmod(0o755)
        self.data_dir = self.root / "data"
        self.sources = self.root / "sources"
        # The reconciler every few seconds (production: 60 s, stuck after 300 s), so a drill
        # recovers in seconds; stuck after 15 s, so that on a loaded machine it does not flood
        # the queues with re-sends of batches that are only slow.
        self.reconcile_seconds = reconcile_seconds
        self.stuck_after = stuck_after
        self.processes: list[Process] = []
        self.postgres: Postgres | None = None
        self.redis: Redis | None = None
        self.env: dict[str, str] = {}
        self._previous_handlers: dict[int, Any] = {}

    def __enter__(self) -> Stack:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous_handlers[sig] = signal.signal(sig, self._interrupted)
        try:
            self.data_dir.mkdir()
            self.sources.mkdir()
            self.postgres = Postgres(self.root / "pg")
            self.postgres.start()
            self.redis = Redis(self.root)
            self.redis.start()
        except BaseException:
            self.close()
            raise
        log(f"stack {self.root}: postgres :{self.postgres.port}, redis :{self.redis.port}")
        return self

    def _interrupted(self, signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        # Read the workers' logs before `close` removes them: a stalled drill says why.
        detail = explain(str(error), self.processes) if isinstance(error, DrillError) else None
        self.close()
        if detail is not None and detail != str(error):
            raise DrillError(detail) from error

    def use_database(self, database_url: str, **extra: str) -> dict[str, str]:
        """Point this process and every process started after at `database_url`."""
        assert self.redis is not None
        self.env = {
            "AA_DATABASE_URL": database_url,
            "AA_BROKER_URL": self.redis.url,
            "AA_DATA_DIR": str(self.data_dir),
            "AA_SOURCE_ROOTS": json.dumps([str(self.sources)]),
            "AA_LOG_LEVEL": "WARNING",
            "AA_ADMIN_PASSWORD": "",
            "AA_SECRET_KEY": secrets.token_urlsafe(40),
            "AA_JOBS_EAGER": "false",
            "AA_WORKER_HEARTBEAT_SECONDS": "1",
            "AA_RECONCILER__INTERVAL_SECONDS": str(self.reconcile_seconds),
            "AA_RECONCILER__STUCK_AFTER_SECONDS": str(self.stuck_after),
            **extra,
        }
        os.environ.update(self.env)
        from server.core import runtime
        from server.core.config import get_settings

        get_settings.cache_clear()
        runtime.reset()
        return self.env

    def migrate(self) -> None:
        from server.cli import _migrate
        from server.core.config import get_settings

        _migrate(get_settings())

    def _child_env(self) -> dict[str, str]:
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}

    def worker(self, name: str, queues: Sequence[str] = ("cpu", "gpu"), *, concurrency: int = 1) -> Process:
        command = [sys.executable, "-m", "celery", "-A", "server.worker", "worker", "-Q", ",".join(queues)]
        command += ["--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO"]
        command += ["-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
        process = Process(name, command, self._child_env(), self.root / f"{name}.log")
        self.processes.append(process)
        return process

    def beat(self) -> Process:
        command = [sys.executable, "-m", "celery", "-A", "server.worker", "beat", "--loglevel", "INFO"]
        command += ["-s", str(self.root / "celerybeat-schedule")]
        process = Process("beat", command, self._child_env(), self.root / "beat.log")
        self.processes.append(process)
        return process

    def api(self, workers: int = 2) -> tuple[Process, str]:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "server.main:create_app", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        command += ["--log-level", "warning", "--no-access-log"]
        process = Process("api", command, self._child_env(), self.root / "api.log")
        self.processes.append(process)
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process)
        return process, base

    def wait_heartbeat(self, name: str, process: Process, timeout: float = 90) -> None:
        from sqlalchemy import text

        from server.core import runtime

        def beating() -> bool:
            with runtime.database().session_scope() as session:
                return bool(
                    session.execute(
                        text("SELECT count(*) FROM worker_heartbeats WHERE hostname LIKE :n"),
                        {"n": f"{name}@%"},
                    ).scalar()
                )

        wait_for(beating, timeout, f"worker {name} never sent a heartbeat", alive=process.assert_alive)

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop(timeout=10)
        with contextlib.suppress(Exception):
            from server.core import runtime

            runtime.reset()
        if self.redis is not None:
            self.redis.close()
        if self.postgres is not None:
            self.postgres.close()
        if self.keep:
            log(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()


def _wait_healthy(base: str, process: Process, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.assert_alive()
        try:
            body = httpx.get(f"{base}/api/v1/health", timeout=2, trust_env=False).json()
            if body.get("database", {}).get("ok"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise DrillError(f"the API was not healthy in {timeout} s:\n{process.tail()}")


def scalar(sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    from server.core import runtime

    with runtime.database().session_scope() as session:
        return session.execute(text(sql), params).scalar()


def rows(sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    from server.core import runtime

    with runtime.database().session_scope() as session:
        return list(session.execute(text(sql), params))


def emit(result: dict[str, Any]) -> None:
    """The drill's last line on stdout: one JSON object."""
    print(json.dumps(result), flush=True)


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    log(f"{label}: {time.monotonic() - started:.1f} s")
