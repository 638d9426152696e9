"""What the fault, hostile-input and secrets tests share: a fake Web API that remembers which
calls it broke, a TCP proxy on 127.0.0.1 that can be cut and restored (a Web API or a database
going away), an in-process faqbot with short timeouts, and ``faqbot run`` in its own process
group (so a test can SIGKILL or SIGTERM the whole server).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

from bot.config import Settings
from bot.reload import KnowledgeHolder
from bot.slack.app import build_app, make_client
from bot.slack.server import HealthzWrapper
from bot.slack.staff_blocks import triage_builder
from bot.slack.triage import Triage
from bot.tickets import Ticket, TicketStore, open_store
from tests import slack_helpers as h
from tests.fake_slack import Call
from tests.staff_harness import STAFF, SUPPORT, StaffFakeSlack, _QuietHandler, _ThreadingWSGIServer

__all__ = ["Bot", "RecordingFake", "SwitchableStore", "TcpProxy", "run_server", "wait_until"]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
               ) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class RecordingFake(StaffFakeSlack):
    """The fake Web API; each recorded call also says whether it was answered normally
    (``call.faulted`` is None) or broken on purpose (the fault's kind). Faults can be limited
    to one channel (:meth:`fail_channel`), e.g. only the triage posts."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._channel_faults: list[list[Any]] = []  # [channel, kind, remaining, delay]

    def fail_channel(self, channel: str, kind: str, times: int = 1, *, delay: float = 0.0
                     ) -> None:
        with self._lock:
            self._channel_faults.append([channel, kind, times, delay])

    def recover(self) -> None:
        super().recover()
        with self._lock:
            self._channel_faults.clear()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._channel_faults.clear()

    def _record(self, call: Call) -> None:
        call.faulted = None  # type: ignore[attr-defined]
        self._local.call = call
        super()._record(call)

    def _take_fault(self, method: str) -> Any:
        call = getattr(self._local, "call", None)
        fault = None
        with self._lock:
            for spec in self._channel_faults:
                if spec[2] > 0 and call is not None and call.params.get("channel") == spec[0]:
                    spec[2] -= 1
                    from tests.fake_slack import _Fault

                    fault = _Fault(spec[1], 1, None, 0, spec[3])
                    break
        fault = fault or super()._take_fault(method)
        if fault is not None and call is not None:
            call.faulted = fault.kind  # type: ignore[attr-defined]
        return fault

    def delivered(self, method: str = "chat.postMessage", channel: str | None = None
                  ) -> list[Call]:
        """Calls answered normally (what Slack would have shown)."""
        return [c for c in self.calls(method) if getattr(c, "faulted", None) is None
                and (channel is None or c.params.get("channel") == channel)]


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 in front of ``target_port``; :meth:`cut` closes it and every
    connection through it (connections are then refused), :meth:`restore` listens again on
    the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = h.free_port()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class SwitchableStore:
    """A :class:`TicketStore` that forwards to :attr:`current`; a test swaps it for a read-only
    view of the same SQLite file (the disk turned read-only) and back."""

    def __init__(self, store: TicketStore) -> None:
        self.current = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)


class Bot(h.SignedRequests):
    """faqbot in this process, as ``faqbot run`` builds it (the real Bolt app behind the real
    WSGI wrapper and guard), served on 127.0.0.1 against :class:`RecordingFake`.

    Args:
        database_url: the store (default: SQLite in ``tmp``).
        api_url: the Web API base URL (default: the fake's; e.g. a :class:`TcpProxy` to it).
        api_timeout: the Web API client's timeout.
        interval: the triage retry loop's sweep interval.
        store: wrap the opened store (e.g. :class:`SwitchableStore`).
    """

    def __init__(self, tmp: Path, *, database_url: str | None = None,
                 fake: RecordingFake | None = None, api_url: str | None = None,
                 api_timeout: float = 1.0, interval: float = 1.0,
                 store: Callable[[TicketStore], TicketStore] | None = None) -> None:
        self.fake = fake or RecordingFake().start()
        self.kb_path = tmp / "faq.yaml"
        self.kb_path.write_text(h.SLACK_KB, encoding="utf-8")
        self.settings = Settings(
            slack_bot_token=h.BOT_TOKEN,
            slack_signing_secret=h.SIGNING_SECRET,
            slack_api_url=api_url or self.fake.api_url,
            slack_api_timeout=api_timeout,
            support_channel_id=SUPPORT,
            support_user_ids=frozenset(),
            knowledge_path=str(self.kb_path),
            database_url=database_url or f"sqlite:///{tmp / 'tickets.sqlite3'}",
        )
        opened = open_store(self.settings.database_url)
        self.raw_store = opened
        self.store = store(opened) if store else opened
        self.holder = KnowledgeHolder(self.kb_path)
        client = make_client(self.settings)
        self.triage = Triage(client, self.store, SUPPORT, interval=interval,
                             message_builder=triage_builder(self.holder))
        # As `faqbot run` does: auth.test once at start, handed to Bolt (not per request).
        auth_test = make_client(Settings(slack_bot_token=h.BOT_TOKEN,
                                         slack_api_url=self.fake.api_url)).auth_test()
        self.app = build_app(self.settings, self.holder, self.store, client, triage=self.triage,
                             auth_test=auth_test)
        self.wsgi = HealthzWrapper(self.app, self.holder)
        self._httpd = make_server("127.0.0.1", 0, self.wsgi, server_class=_ThreadingWSGIServer,
                                  handler_class=_QuietHandler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.url = self.base + "/slack/events"
        self.triage.start()

    def close(self) -> None:
        self.triage.stop(1.0)
        self._httpd.shutdown()
        self._httpd.server_close()
        self.fake.stop()
        self.raw_store.close()

    def replies(self, channel: str = "C111") -> list[Call]:
        return self.fake.delivered("chat.postMessage", channel)

    def triaged(self) -> list[Call]:
        return self.fake.delivered("chat.postMessage", SUPPORT)

    def tickets(self) -> list[Ticket]:
        return self.raw_store.list(limit=1000)


STAFF_USER = STAFF


# ----------------------------------------------------------------------------- subprocesses


def run_server(env: dict[str, str], cwd: Path, *, timeout: float = 25.0
               ) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``python -m bot run`` in a new process group; (process, base URL, log file)."""
    proc, base = h.start_server(env, cwd, run_in=h.ROOT, new_session=True, timeout=timeout)
    return proc, base, cwd / f"server-{base.rsplit(':', 1)[1]}.log"


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the server's whole process group (gunicorn's master and its workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    if sig == signal.SIGKILL:
        proc.wait(10)


@contextlib.contextmanager
def server(env: dict[str, str], cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    proc, base, log = run_server(env, cwd)
    try:
        yield proc, base, log
    except BaseException as exc:  # a failing test shows what the server said
        exc.add_note("the server's log ends:\n" + log.read_text(errors="replace")[-4000:])
        raise
    finally:
        if proc.poll() is None:
            kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                kill_group(proc)
