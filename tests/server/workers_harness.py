"""Real Celery worker processes for end-to-end tests: start one, wait on it, SIGKILL it whole.

A worker runs in its own session (its own process group), so that killing the group takes the
prefork parent and every pool child at once, as a machine or container dying would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from tests.conftest import ROOT


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    message: str,
    *,
    alive: Callable[[], None] | None = None,
    interval: float = 0.2,
) -> None:
    """Poll `condition` until it holds; `alive` raises when what we wait on died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None:
            alive()
        time.sleep(interval)
    raise AssertionError(message)


def _group_members(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (a zombie holds no resources)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class Worker:
    """One `celery -A server.worker worker` process group; its output goes to `log_path`."""

    def __init__(self, name: str, queues: Sequence[str], log_path: Path, *, concurrency: int = 2) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 (closed in stop/kill)
        command = ["-m", "celery", "-A", "server.worker", "worker", "-Q", ",".join(queues)]
        command += ["--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO", "-n", name]
        self.process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env={**os.environ},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def assert_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise AssertionError(
                f"worker {self.name} exited with {code}; see {self.log_path}:\n{self.tail()}"
            )

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self, timeout: float = 20) -> None:
        """SIGKILL the whole group (parent and pool children) and wait until none is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"worker {self.name} survived SIGKILL") from exc
        wait_for(
            lambda: not _group_members(self.pid), timeout, f"pool children of {self.name} survived SIGKILL"
        )
        self._log.close()

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL the group if it does not go in time."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        if _group_members(self.pid) or self.process.poll() is None:
            self.kill(timeout)
        self._log.close()
