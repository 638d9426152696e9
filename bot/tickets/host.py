"""One process that runs a SQLite ticket store for the worker processes of ``faqbot run``.

SQLite has one writer at a time. When each gunicorn worker writes the file itself, a writer
holds the lock while its thread waits for its own process's GIL between statements, behind
that worker's request threads: the lock is held far longer than the writes take, and under
load the workers queue for it (docs/tickets.md). :class:`StoreHost` runs the store in a
process of its own, where nothing else wants the GIL, and answers the calls one at a time;
each worker's :class:`HostedStore` sends it the store's calls over a Unix socket
(``multiprocessing.connection``, with a random key, in a folder only this user can open).

Where the host cannot be reached (stopped, or dead), a worker runs its calls on a store of
its own on the same file, as without a host; SQLite's locks keep the two safe together. A
call the host received but did not answer (it died meanwhile, or took longer than
:data:`ANSWER_TIMEOUT_SECONDS`) may have been recorded: it is raised as
:class:`~bot.errors.StoreError`, as a call on a lost database connection is, and never run
again.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import select
import shutil
import signal
import tempfile
import threading
import time
from multiprocessing.connection import AuthenticationError, Client, Connection, Listener, wait
from typing import Any

from bot.errors import StoreError
from bot.tickets.engine import display_url, shared_sqlite_file
from bot.tickets.model import TicketStore
from bot.tickets.store import SqlTicketStore

__all__ = ["HostedStore", "StoreHost", "hostable", "start_store_host"]

log = logging.getLogger(__name__)

#: The store calls a host runs: the TicketStore protocol's, but ``close`` (each side closes
#: what it opened).
CALLS = frozenset(name for name in dir(TicketStore) if not name.startswith("_")) - {"close"}
#: How often the host checks that the process that started it is still there.
_PARENT_CHECK_SECONDS = 1.0
#: How long a worker waits for the host's answer: well past the store's own wait for the
#: SQLite write lock (its busy timeout, 15 s), after which the store raises StoreError itself.
ANSWER_TIMEOUT_SECONDS = 30.0


def hostable(url: str) -> bool:
    """Whether ``url`` is a SQLite file that several processes write, where a host helps
    (:func:`~bot.tickets.engine.shared_sqlite_file`; PostgreSQL has writers of its own)."""
    return shared_sqlite_file(url)


def start_store_host(url: str) -> StoreHost | None:
    """A started :class:`StoreHost` for ``url``, or None (logged) when it cannot start: the
    workers then write the file themselves."""
    try:
        host = StoreHost(url)
    except OSError as exc:  # no private folder for its socket
        log.warning("no ticket store process (%s); each worker writes %s itself", exc,
                    display_url(url))
        return None
    if host.start():
        return host
    host.stop()
    return None


class StoreHost:
    """The process that runs the store for ``url``; :meth:`start` it before forking workers,
    which then open :meth:`client`.

    The process ignores SIGTERM and SIGINT, which a terminal or a service manager sends to
    the whole process group: the workers may still be finishing their last events. It ends
    at :meth:`stop` (after the workers), or by itself once the process that started it is
    gone."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._folder = tempfile.mkdtemp(prefix="faqbot-store-")  # mode 0700
        self.address = os.path.join(self._folder, "store.sock")
        self.authkey = os.urandom(32)
        self.pid: int | None = None

    def start(self, timeout: float = 10.0) -> bool:
        """Fork the process and wait until it listens (True), at most ``timeout`` seconds:
        workers forked afterwards then never find it missing."""
        read_end, write_end = os.pipe()
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes or memory
            os.close(read_end)
            os.close(write_end)
            log.warning("cannot start the ticket store process (%s); each worker writes %s "
                        "itself", exc, display_url(self.url))
            return False
        if pid == 0:  # the host
            os.close(read_end)
            try:
                _serve(self.url, self.address, self.authkey, parent, write_end)
            except BaseException:
                log.exception("the ticket store process stopped")
            finally:
                os._exit(0)
        os.close(write_end)
        self.pid = pid
        try:
            ready = select.select([read_end], [], [], timeout)[0] and os.read(read_end, 1)
        finally:
            os.close(read_end)
        if not ready:  # it exited (its end of the pipe closed) or did not answer in time
            log.warning("the ticket store process did not start; each worker writes %s itself",
                        display_url(self.url))
            return False
        log.info("ticket store process %d serves %s", pid, display_url(self.url))
        return True

    def client(self) -> HostedStore:
        return HostedStore(self.url, self.address, self.authkey)

    @property
    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            return os.waitpid(self.pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:  # reaped already (gunicorn's master reaps every child)
            return False

    def stop(self) -> None:
        # Killed only while it is still this process's unreaped child: once reaped (by
        # gunicorn's master, say), its pid may belong to another process.
        if self.alive:
            assert self.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)  # it ignores SIGTERM (see the class)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.pid = None
        shutil.rmtree(self._folder, ignore_errors=True)


def _serve(url: str, address: str, authkey: bytes, parent: int, ready: int) -> None:
    """The host process: one store, and one thread that answers every worker connection's
    calls in turn (another accepts connections), until the process that started it is gone.
    One at a time costs the least: the calls are short, SQLite takes one write at a time
    anyway, and threads taking turns cost a quarter more CPU per event (docs/tickets.md)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _name_process(b"faqbot-store")
    # What the fork copied (the knowledge, the model) is never used here: the collector
    # leaves it alone, so its pages stay shared with the process that started this one.
    gc.freeze()
    store = SqlTicketStore(url)
    listener = Listener(address, family="AF_UNIX", authkey=authkey)
    os.write(ready, b"1")
    os.close(ready)

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch_parent, name="faqbot-store-parent", daemon=True).start()
    wake_r, wake_w = os.pipe()
    arrived: list[Connection] = []

    def accept() -> None:
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError, AuthenticationError):
                continue  # a client that left during the handshake, or without the key
            arrived.append(conn)
            os.write(wake_w, b"x")

    threading.Thread(target=accept, name="faqbot-store-accept", daemon=True).start()
    conns: list[Connection] = []
    while True:
        for conn in wait([wake_r, *conns]):
            if conn == wake_r:
                os.read(wake_r, 4096)
                while arrived:
                    conns.append(arrived.pop())
            elif not _answer_one(store, conn):
                conns.remove(conn)
                conn.close()


def _answer_one(store: SqlTicketStore, conn: Connection) -> bool:
    """Run one call from ``conn``; False when the connection is gone."""
    try:
        name, args, kwargs = conn.recv()
    except Exception:  # gone, or not a call (only faqbot's own workers have the key)
        return False
    try:
        if name not in CALLS:
            raise AttributeError(f"the ticket store has no call {name!r}")
        reply: tuple[str, Any] = ("ok", getattr(store, name)(*args, **kwargs))
    except Exception as exc:  # the caller's to handle, as if it had run there
        reply = ("error", exc)
    try:
        conn.send(reply)
    except (OSError, ValueError):
        return False
    except Exception as exc:  # a result or error that does not pickle
        try:
            conn.send(("error", StoreError(f"the ticket store process could not send the "
                                           f"result of {name}: {exc}")))
        except (OSError, ValueError):
            return False
    return True


def _name_process(name: bytes) -> None:
    """The name ``ps`` and ``top`` show (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(15, name, 0, 0, 0)  # PR_SET_NAME


class HostedStore:
    """A :class:`~bot.tickets.model.TicketStore` whose calls run in a :class:`StoreHost`'s
    process (one connection per thread), or here, on a store of its own, when the host
    cannot be reached (see the module)."""

    def __init__(self, url: str, address: str, authkey: bytes) -> None:
        self.url = display_url(url)
        self._url = url
        self._address = address
        self._authkey = authkey
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._own: SqlTicketStore | None = None
        self.answer_timeout = ANSWER_TIMEOUT_SECONDS

    def __getattr__(self, name: str) -> Any:
        if name not in CALLS:
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, args, kwargs)

        call.__name__ = name
        return call

    def _call(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        conn = self._connection()
        if conn is not None:
            try:
                conn.send((name, args, kwargs))
            except OSError:  # not received: the host is gone
                self._forget(conn)
            else:
                try:
                    if not conn.poll(self.answer_timeout):
                        raise TimeoutError
                    kind, value = conn.recv()
                except (EOFError, OSError):  # TimeoutError included
                    self._forget(conn)  # a late answer must not be read as the next call's
                    raise StoreError(f"{self.url}: the ticket store process stopped or did not "
                                     f"answer during {name}; it may have been recorded") from None
                if kind == "error":
                    raise value
                return value
        return getattr(self._fallback(), name)(*args, **kwargs)

    def _connection(self) -> Connection | None:
        conn = getattr(self._tls, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = Client(self._address, family="AF_UNIX", authkey=self._authkey)
        except (OSError, EOFError, AuthenticationError):
            return None
        self._tls.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _forget(self, conn: Connection) -> None:
        self._tls.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()

    def _fallback(self) -> SqlTicketStore:
        with self._lock:
            if self._own is None:
                log.warning("the ticket store process does not answer; this worker writes %s "
                            "itself", self.url)
                self._own = SqlTicketStore(self._url)
            return self._own

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
            own, self._own = self._own, None
        for conn in connections:
            conn.close()
        if own is not None:
            own.close()
