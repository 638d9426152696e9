"""`faqbot run` (HTTP mode) as processes: glibc's malloc settings reach the master and every
worker, an operator's own setting wins, and each worker starts its threads before serving
(so memory is taken up front, not as load first needs it: bench/bench_soak.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack.app import BACKGROUND_THREADS, LISTENER_THREADS
from bot.slack.server import DEFAULT_THREADS, DEFAULT_WORKERS, MALLOC_TUNABLES
from tests import slack_helpers as h
from tests.fake_slack import FakeSlack

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0")
                if "=" in item)


def _ours(value: str | None) -> bool:
    """Whether a process was started with MALLOC_TUNABLES. glibc 2.36 cuts the variable at its
    first ':' in the process's own environment block once it has read it (its parsed copy,
    which Python's os.environ shows, is whole), so a prefix counts."""
    return bool(value) and MALLOC_TUNABLES.startswith(value)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _workers(pid: int) -> list[int]:
    """The master's gunicorn workers (not the ticket store process beside them)."""
    return [c for c in _children(pid) if _name(c) != "faqbot-store"]


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def _serve(fake: FakeSlack, tmp_path: Path, **extra: str):
    env = h.server_env(fake.api_url, tmp_path)
    env.pop("GLIBC_TUNABLES", None)  # as if the operator had not set it, unless `extra` does
    return h.start_server({**env, **extra}, tmp_path)


def _wait_for_workers(pid: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = _workers(pid)
        if len(workers) == DEFAULT_WORKERS:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"expected {DEFAULT_WORKERS} workers, got {_workers(pid)}")


def test_malloc_settings_and_threads_up_front(fake: FakeSlack, tmp_path: Path) -> None:
    """The master re-executes itself once with GLIBC_TUNABLES (same PID); the workers inherit
    it, and each has its request, listener and background threads running before load. One
    more child, the ticket store process, writes the workers' SQLite file."""
    proc, _ = _serve(fake, tmp_path)
    try:
        assert _ours(_environ(proc.pid).get("GLIBC_TUNABLES"))
        assert [_name(c) for c in _children(proc.pid)].count("faqbot-store") == 1
        at_least = DEFAULT_THREADS + LISTENER_THREADS + BACKGROUND_THREADS
        for worker in _wait_for_workers(proc.pid):
            assert _ours(_environ(worker).get("GLIBC_TUNABLES"))
            deadline = time.monotonic() + 20
            while _threads(worker) < at_least and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _threads(worker) >= at_least, (_threads(worker), at_least)
    finally:
        h.stop_server(proc)


def test_reexec_keeps_arguments_and_respects_the_operator(monkeypatch) -> None:
    """The re-execution runs the same interpreter with the same arguments, once; not at all
    when the operator set GLIBC_TUNABLES, even empty."""
    from bot.slack import server

    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(server.os, "execv", lambda path, args: calls.append((path, args)))
    monkeypatch.setattr(server.sys, "orig_argv", [sys.executable, "-m", "bot", "run"])
    monkeypatch.setattr(server.sys, "argv", ["/x/bot/__main__.py", "run"])
    monkeypatch.setenv("GLIBC_TUNABLES", "")
    server._reexec_with_malloc_tunables()
    assert calls == []
    monkeypatch.delenv("GLIBC_TUNABLES")
    server._reexec_with_malloc_tunables()
    if server._glibc():
        assert calls == [(sys.executable, [sys.executable, "-m", "bot", "run"])]
        assert server.os.environ["GLIBC_TUNABLES"] == MALLOC_TUNABLES
    else:
        assert calls == []


def test_an_operators_own_setting_is_kept(fake: FakeSlack, tmp_path: Path) -> None:
    """GLIBC_TUNABLES set by the operator (even empty) is left as it is."""
    proc, _ = _serve(fake, tmp_path, GLIBC_TUNABLES="")
    try:
        assert _environ(proc.pid)["GLIBC_TUNABLES"] == ""
        for worker in _wait_for_workers(proc.pid):
            assert _environ(worker)["GLIBC_TUNABLES"] == ""
    finally:
        h.stop_server(proc)
