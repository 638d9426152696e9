"""The ticket store process (bot/tickets/host.py): the workers' calls run in it, once each,
and a worker that cannot reach it writes the file itself."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from multiprocessing.connection import Listener
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.tickets import NewTicket, SqlTicketStore, UnknownTicketError
from bot.tickets.host import HostedStore, StoreHost, hostable


def new(question: str, thread: str) -> NewTicket:
    return NewTicket(requester="U1", question=question, reason="no_match", channel="C1",
                     thread_ts=thread, message_ts=thread)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tickets.sqlite3'}"


@pytest.fixture
def host(url: str) -> Iterator[StoreHost]:
    started = StoreHost(url)
    assert started.start()
    yield started
    started.stop()


def stored(url: str) -> list:
    """The tickets in the file, read by a store of this test's own."""
    store = SqlTicketStore(url)
    try:
        return store.list(limit=1000)
    finally:
        store.close()


def test_hostable() -> None:
    """Only a SQLite file that several processes write is served by a host."""
    assert hostable("sqlite:///tickets.sqlite3") and hostable("sqlite:////var/lib/t.db")
    for url in ("sqlite://", "sqlite:///:memory:", "memory://", "sqlite:///file:t.db?mode=ro",
                "postgresql://u@localhost/db", "not a url"):
        assert not hostable(url), url


def test_workers_calls_run_once_in_the_host(host: StoreHost, url: str,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """Two workers' stores, eight threads each: every ticket stored once with its own
    number, a delivery claimed by one of them only, nothing written around the host."""
    clients = [host.client(), host.client()]
    numbers: list[int] = []
    claims: list[bool] = []
    lock = threading.Lock()

    def work(client: HostedStore, k: int) -> None:
        for n in range(10):
            ticket, created = client.open_ticket(new(f"q {k}-{n}", f"{k}.{n}"))
            claimed = client.take_delivery([f"Ev{n}"]).claimed  # every thread the same keys
            with lock:
                numbers.append(ticket.number)
                claims.append(claimed)
            assert created

    with caplog.at_level(logging.WARNING, logger="bot.tickets.host"):
        threads = [threading.Thread(target=work, args=(clients[k % 2], k)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(numbers) == list(range(1, 81))
    assert sum(claims) == 10  # each of Ev0-Ev9 once
    assert len(stored(url)) == 80
    assert caplog.records == []  # no worker wrote the file itself
    for client in clients:
        client.close()


def test_errors_come_back_as_raised(host: StoreHost) -> None:
    """An error raised in the host is raised in the worker, with its details."""
    client = host.client()
    with pytest.raises(UnknownTicketError) as raised:
        client.set_status(42, "in_progress", actor="U2")
    assert raised.value.number == 42
    with pytest.raises(ValueError):
        client.set_status(1, "nonsense", actor="U2")
    with pytest.raises(AttributeError):
        client.no_such_call()  # type: ignore[attr-defined]
    assert client.get(42) is None
    client.close()


def test_without_the_host_a_worker_writes_the_file_itself(
        host: StoreHost, url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Once the host is gone (killed), each call runs on a store of the worker's own: the
    ticket is stored all the same, and the switch is logged once."""
    client = host.client()
    first, _ = client.open_ticket(new("before", "1.0"))
    assert host.pid is not None
    os.kill(host.pid, signal.SIGKILL)
    os.waitpid(host.pid, 0)
    with caplog.at_level(logging.WARNING, logger="bot.tickets.host"):
        second, created = client.open_ticket(new("after", "2.0"))
        third, _ = client.open_ticket(new("and after", "3.0"))
    assert created and (first.number, second.number, third.number) == (1, 2, 3)
    assert [t.question for t in sorted(stored(url), key=lambda t: t.number)] == [
        "before", "after", "and after"]
    assert [r.getMessage() for r in caplog.records] == [
        f"the ticket store process does not answer; this worker writes {client.url} itself"]
    client.close()


def test_a_call_the_host_received_but_did_not_answer_is_not_run_again(
        tmp_path: Path, url: str) -> None:
    """A host that dies between reading a call and answering it may have recorded it: the
    call fails with StoreError, and the worker does not run it a second time."""
    address, key = str(tmp_path / "store.sock"), b"k" * 32
    listener = Listener(address, family="AF_UNIX", authkey=key)
    received: list = []

    def die_after_reading() -> None:
        conn = listener.accept()
        received.append(conn.recv())
        conn.close()

    server = threading.Thread(target=die_after_reading)
    server.start()
    client = HostedStore(url, address, key)
    with pytest.raises(StoreError, match="did not answer during open_ticket; it may have been"):
        client.open_ticket(new("lost answer", "1.0"))
    server.join(5)
    listener.close()
    assert received and received[0][0] == "open_ticket"
    assert stored(url) == []  # not run here instead
    client.close()


def test_stop_ends_the_process_and_removes_its_socket(url: str) -> None:
    started = StoreHost(url)
    assert started.start() and started.alive and os.path.exists(started.address)
    started.stop()
    assert not started.alive and not os.path.exists(started.address)


def test_a_host_that_cannot_listen_is_not_waited_for(url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A socket path the system refuses (too long) ends the process at once, and start says
    so without waiting out its timeout; without a folder for the socket there is no host.
    Either way the workers write the file themselves."""
    import time

    from bot.tickets import host as hosting

    refused = StoreHost(url)
    refused.address = str(tmp_path / ("x" * 200))
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.tickets.host"):
        assert refused.start(timeout=30) is False
    assert time.monotonic() - began < 10
    assert "did not start" in caplog.text
    refused.stop()

    def no_folder(prefix: str) -> str:
        raise PermissionError("read-only /tmp")

    monkeypatch.setattr(hosting.tempfile, "mkdtemp", no_folder)
    assert hosting.start_store_host(url) is None
    assert "no ticket store process (read-only /tmp)" in caplog.text


def test_a_host_that_does_not_answer_in_time_is_a_store_error(tmp_path: Path, url: str) -> None:
    """A host that reads a call and never answers: the worker gives up after its timeout with
    StoreError, and its next call goes on a new connection (not reading the late answer)."""
    address, key = str(tmp_path / "store.sock"), b"k" * 32
    listener = Listener(address, family="AF_UNIX", authkey=key)
    late: list[BaseException] = []
    done = threading.Event()

    def hang() -> None:
        conn = listener.accept()
        conn.recv()
        done.wait(10)
        try:
            conn.send(("ok", "late"))
        except OSError as exc:  # too late: the worker closed that connection
            late.append(exc)

    server = threading.Thread(target=hang)
    server.start()
    client = HostedStore(url, address, key)
    client.answer_timeout = 0.2
    with pytest.raises(StoreError, match="did not answer during get"):
        client.get(1)
    done.set()
    server.join(5)
    listener.close()
    assert late and isinstance(late[0], BrokenPipeError)
    assert client.get(1) is None  # the host is gone now: answered by the worker's own store
    client.close()


def test_a_connection_that_breaks_off_does_not_stop_the_others(host: StoreHost) -> None:
    """The one thread that answers every connection drops a connection that closes or sends
    something that is not a call, and goes on answering the rest."""
    from multiprocessing.connection import Client

    client = host.client()
    client.open_ticket(new("first", "1.0"))
    for send in (None, "not a call", ("get",)):
        raw = Client(host.address, family="AF_UNIX", authkey=host.authkey)
        if send is not None:
            raw.send(send)
        raw.close()
    ticket, created = client.open_ticket(new("second", "2.0"))
    assert created and ticket.number == 2 and host.alive
    client.close()
