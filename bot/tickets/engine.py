"""Connections for the ticket store: the SQLAlchemy engine for a ``sqlite:///`` or
``postgresql://`` URL, and what each database needs around it.

- SQLite: WAL, a busy timeout, ``BEGIN IMMEDIATE`` for writes, and :class:`WriterQueue` (an
  ``flock`` that makes faqbot processes sharing one file take turns without sleeping).
- PostgreSQL: psycopg 3, a bounded pool, and a cheap check of an idle connection's socket
  when it is taken from the pool (:func:`_check_idle_socket`).

No statement is run here: :class:`bot.tickets.store.SqlTicketStore` runs them all.
"""

from __future__ import annotations

import functools
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: writers queue on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

from bot.errors import StoreError

__all__ = ["FRESH", "Database", "WriterQueue", "connect", "describe", "display_url",
           "shared_sqlite_file", "table_of"]

_BUSY_TIMEOUT_SECONDS = 15
_CONNECT_TIMEOUT_SECONDS = 10
#: PostgreSQL connections kept per process (SQLAlchemy's QueuePool), and none beyond them.
#: A faqbot worker has up to ~20 threads that use the store at once (the background pool,
#: the /faq question log, triage); SQLAlchemy's default (5 kept, 10 more opened and closed on
#: demand) opened a new connection, a new server process, for every few requests under load
#: (bench/bench_soak.py: 1,477 connections for 5,500 requests). Threads beyond this many
#: wait for a connection instead, which costs less than opening one; the total stays well
#: under PostgreSQL's default max_connections (100) with several processes.
_PG_POOL_SIZE = 10
_PG_POOL_TIMEOUT_SECONDS = 30


def _engine_url(url: str) -> sa.URL:
    """Parse ``url`` and pick the psycopg 3 driver for ``postgresql://`` (and ``postgres://``)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            "the database URL is not valid; expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {display_url(url)}; use sqlite:///PATH or postgresql://…"
        )
    return parsed


def shared_sqlite_file(url: str) -> bool:
    """Whether ``url`` names a SQLite file that several processes may write: not memory (one
    process's), not a ``file:`` URI (e.g. ``mode=ro``, left as it is), not PostgreSQL."""
    try:
        return _shared_file(_engine_url(url))
    except StoreError:
        return False


def _shared_file(parsed: sa.URL) -> bool:
    database = parsed.database or ""
    return (parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
            and not database.startswith("file:"))


def display_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let _on_sqlite_begin issue BEGIN: pysqlite's own would be deferred, and a deferred
    # transaction that later writes fails at once ("database is locked") in WAL mode.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except dbapi_conn.OperationalError:
            pass  # a read-only database keeps its journal mode and can still be read
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # Straight to the driver: BEGIN has no parameters and no result, and this runs once per
    # transaction, inside the write lock. A failure (e.g. the database is locked past
    # busy_timeout) is still wrapped by SQLAlchemy, which calls this from its own begin.
    begin = conn.get_execution_options().get("faqbot_begin", "BEGIN")
    conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]


_WRITER_LOCK_SUFFIX = "-writers.lock"


class WriterQueue:
    """An exclusive ``flock`` on a file beside a SQLite database, held around each write
    transaction, so that faqbot processes sharing the file (gunicorn workers) hand the write
    lock to each other within a fraction of a millisecond. Without it a writer that finds
    the database locked sleeps in SQLite's busy handler, whose back-off (1, 2, 5, 10, …, 100
    ms) leaves the database idle while writers of the other process wait.

    It only orders faqbot's own writers: SQLite's locks still decide, and a writer outside
    faqbot is still waited for by ``busy_timeout``. The wait here is bounded by the same
    timeout (a process stopped while holding the lock cannot block the others for longer),
    after which the writer goes on without it. The kernel drops the lock of a process that
    dies. Where the file cannot be opened (a read-only directory) or there is no ``flock``,
    writers go without it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._broken = False
        self._held = False

    def __enter__(self) -> None:
        fd = self._open()
        if fd is None:
            return
        deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return  # go on without it: SQLite's busy_timeout has the last word
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
                continue
            except OSError:
                self._broken = True
                return
            self._held = True
            return

    def __exit__(self, *exc: object) -> None:
        if self._held:
            self._held = False
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
            except OSError:
                self._broken = True

    def _open(self) -> int | None:
        """This process's descriptor (a forked child opens its own: a lock taken through an
        inherited descriptor would be shared with the parent)."""
        if self._broken or fcntl is None:
            return None
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            self._broken = True
            return None
        self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


FRESH = "faqbot_fresh"


def _on_pg_connect(_dbapi_conn: Any, record: Any) -> None:
    # A connection just opened has not had the time to go stale: a failure on it is not
    # retried (the database is down, not a connection lost while idle in the pool).
    record.info[FRESH] = True


def _check_idle_socket(dialect: sa.Dialect, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Checkout: an idle PostgreSQL connection has nothing to read. When its socket is
    readable, the server has closed it or said something (e.g. "terminating connection due
    to administrator command"): ping it, and let the pool open another when the ping fails.
    One poll() instead of pool_pre_ping's round trip on every checkout."""
    try:
        if dbapi_conn.closed:
            raise sa.exc.DisconnectionError("connection closed")
        readable, _, _ = select.select([dbapi_conn.pgconn.socket], [], [], 0)
    except Exception as exc:  # closed or broken (psycopg), a bad descriptor (OSError)…
        raise sa.exc.DisconnectionError(str(exc)) from exc
    if readable:
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc



def table_of(exc: BaseException) -> str | None:
    """The table a PostgreSQL constraint violation names (psycopg's diagnostics)."""
    diag = getattr(getattr(exc, "orig", None) or exc, "diag", None)
    return getattr(diag, "table_name", None)


def describe(url: str, password: str | None, exc: BaseException) -> str:
    """A one-line message for ``exc``, naming the database ``url``, never its password."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    message = lines[0].strip() if lines else type(cause).__name__
    if password:
        message = message.replace(password, "***")
    return f"ticket store {url}: {message}"


@dataclass
class Database:
    """An engine and what running a transaction on it needs (see :func:`connect`)."""

    engine: sa.Engine
    url: str  # as the user wrote it, without the password
    password: str | None
    sqlite: bool
    #: sqlite:// (in memory) is one connection shared by every thread: they take turns on it.
    serial: threading.Lock | None = None
    #: SQLite: this process's writers queue here rather than in SQLite's busy handler.
    write_lock: threading.Lock | None = None
    #: SQLite file: other processes' writers (see WriterQueue).
    writers: WriterQueue | None = None

    @property
    def dbapi_error(self) -> type[Exception]:
        return self.engine.dialect.loaded_dbapi.Error  # type: ignore[no-any-return]

    def describe(self, exc: BaseException) -> str:
        return describe(self.url, self.password, exc)

    def lost(self, conn: sa.Connection | sa.PoolProxiedConnection, exc: BaseException) -> bool:
        """Whether ``exc`` says the connection (an SQLAlchemy one, or the pool's) is gone, not
        that a statement failed."""
        if isinstance(exc, sa.exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            exc = exc.orig  # type: ignore[assignment]
        if not isinstance(exc, self.dbapi_error):
            return False
        try:
            pooled = conn.connection if isinstance(conn, sa.Connection) else conn
            dbapi_conn = pooled.dbapi_connection
        except sa.exc.SQLAlchemyError:
            return True
        if dbapi_conn is None or getattr(dbapi_conn, "closed", False) or \
                getattr(dbapi_conn, "broken", False):
            return True
        return bool(self.engine.dialect.is_disconnect(exc, dbapi_conn, None))

    def close(self) -> None:
        self.engine.dispose()
        if self.writers is not None:
            self.writers.close()


def connect(url: str) -> Database:
    """The engine for ``url`` (``sqlite:///PATH``, ``sqlite://`` or ``postgresql://…``).

    Raises:
        StoreError: the URL is not valid or not supported, or its driver is missing.
    """
    parsed = _engine_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {}
    serial = write_lock = writers = None
    if sqlite:
        connect_args = {"check_same_thread": False, "timeout": _BUSY_TIMEOUT_SECONDS}
        write_lock = threading.Lock()
        if parsed.database in (None, "", ":memory:"):
            options["poolclass"] = sa.pool.StaticPool
            serial = threading.Lock()
        elif _shared_file(parsed):  # not a URI (e.g. mode=ro), which is left alone
            writers = WriterQueue(os.path.abspath(parsed.database + _WRITER_LOCK_SUFFIX))
    else:
        if "connect_timeout" not in parsed.query:
            connect_args = {"connect_timeout": _CONNECT_TIMEOUT_SECONDS}
        options.update(pool_size=_PG_POOL_SIZE, max_overflow=0,
                       pool_timeout=_PG_POOL_TIMEOUT_SECONDS)
    shown = display_url(url)
    try:
        # No pool_pre_ping (a round trip before every transaction): a PostgreSQL connection
        # is checked by a look at its socket when taken from the pool (_check_idle_socket),
        # and a transaction that meets a connection lost before it committed is run again
        # once on a new one (SqlTicketStore._run).
        engine = sa.create_engine(parsed, connect_args=connect_args, **options)
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise StoreError(describe(shown, parsed.password, exc)) from exc
    if sqlite:
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)
    else:
        sa.event.listen(engine, "connect", _on_pg_connect)
        sa.event.listen(engine, "checkout", functools.partial(_check_idle_socket, engine.dialect))
    return Database(engine, shown, parsed.password, sqlite, serial, write_lock, writers)
