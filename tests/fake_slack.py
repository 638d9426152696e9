"""A fake Slack Web API (and Socket Mode WebSocket) on 127.0.0.1, for tests and benchmarks.

It records every call (method, parsed form/JSON body, headers) and answers canned JSON. It can be
told to misbehave for the next K calls (429 with Retry-After, 500, a delay, a dropped connection,
malformed JSON, or ``lost``: the call takes effect but its response never arrives), or to stay
down until :meth:`FakeSlack.recover`. Messages posted with ``chat.postMessage`` (and edited with
``chat.update``) are kept per channel and served back by ``conversations.history``::

    with FakeSlack() as slack:
        env["SLACK_API_URL"] = slack.api_url          # http://127.0.0.1:PORT/api/
        slack.fail("429", times=1, retry_after=1)
        ...
        slack.wait_for("chat.postMessage", 1)
        slack.calls("chat.postMessage")[0].params["text"]

Socket Mode: ``apps.connections.open`` returns ``ws://127.0.0.1:PORT/link``; the fake accepts
the WebSocket, says hello, and :meth:`FakeSlack.send_envelope` pushes a request whose
acknowledgement lands in :attr:`FakeSlack.socket_acks`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["Call", "FakeSlack"]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T111"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    def texts(self, *, plain: bool = False) -> list[str]:
        """``text`` and every mrkdwn text in ``blocks`` (what Slack parses for markup); with
        ``plain``, the plain_text ones too."""
        kinds = ("mrkdwn", "plain_text") if plain else ("mrkdwn",)
        found = [self.params["text"]] if isinstance(self.params.get("text"), str) else []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") in kinds and isinstance(node.get("text"), str):
                    found.append(node["text"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.blocks)
        return found

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else blocks


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen() backlog; the default 5 drops SYNs (1 s stalls) under load


@dataclass
class _Fault:
    kind: str  # "429" | "500" | "delay" | "close" | "malformed"
    remaining: float  # calls left (inf while down)
    methods: frozenset[str] | None
    retry_after: int = 1
    delay: float = 0.0


class FakeSlack:
    """The fake server; start with ``with FakeSlack() as slack`` or :meth:`start`/:meth:`stop`."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []
        self._ts = itertools.count(1)
        self._epoch = int(time.time()) - 1
        self._history: dict[str, list[dict[str, Any]]] = {}  # channel -> messages, oldest first
        self.latency = 0.0  # seconds added to every Web API call (benchmarks)
        self._last_call = 0.0  # time.monotonic() of the last recorded call
        self.permalinks = True
        self.socket_acks: list[dict[str, Any]] = []
        self._sockets: list[socket.socket] = []
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        for sock in list(self._sockets):
            try:
                sock.close()
            except OSError:
                pass
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- programming

    def fail(self, kind: str, times: int = 1, *, methods: set[str] | None = None,
             retry_after: int = 1, delay: float = 0.0) -> None:
        """Misbehave on the next ``times`` calls (to ``methods`` only, when given)."""
        with self._lock:
            self._faults.append(_Fault(kind, times, frozenset(methods) if methods else None,
                                       retry_after, delay))

    def go_down(self, kind: str = "500", *, methods: set[str] | None = None) -> None:
        """Fail every call (to ``methods``) until :meth:`recover`."""
        self.fail(kind, times=10**9, methods=methods)

    def recover(self) -> None:
        with self._lock:
            self._faults.clear()

    def settle(self, quiet: float = 0.25, timeout: float = 5.0) -> None:
        """Wait until no call has arrived for ``quiet`` seconds (at most ``timeout``).

        A server shared by several tests may still be finishing the previous test's work
        (a triage post after the requester's reply, say): settle before :meth:`reset`, or
        that late call is recorded as the next test's.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                now = time.monotonic()
                idle = now - self._last_call
                if idle >= quiet or now >= deadline:
                    return
                self._lock.wait(min(quiet - idle, deadline - now))

    def wait_quiet(self, quiet: float = 0.3, timeout: float = 15.0) -> None:
        """Wait until the app has gone quiet: no call for ``quiet`` seconds, counted from now
        at the earliest and again from every call that arrives meanwhile (at most
        ``timeout``). An "exactly once" check counts after this, so that a late duplicate (a
        second reply, a second triage post) is recorded before it counts."""
        start = time.monotonic()
        deadline = start + timeout
        with self._lock:
            while True:
                now = time.monotonic()
                idle = now - max(self._last_call, start)
                if idle >= quiet:
                    return
                if now >= deadline:
                    raise AssertionError(f"the app did not go quiet within {timeout}s")
                self._lock.wait(min(quiet - idle, deadline - now))

    def reset(self) -> None:
        """Forget recorded calls and faults (the ts counter keeps going)."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._history.clear()
            self.socket_acks.clear()
            self.latency = 0.0

    # -------------------------------------------------------------- inspection

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until ``method`` was called at least ``count`` times; the calls so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self._calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} {method} call(s) within {timeout}s, got {len(found)}: "
                        f"{[c.method for c in self._calls]}"
                    )
                self._lock.wait(left)

    # -------------------------------------------------------------- Socket Mode

    def send_envelope(self, payload: dict[str, Any], kind: str = "events_api",
                      envelope_id: str | None = None, retry_attempt: int = 0,
                      timeout: float = 10.0) -> str:
        """Push a Socket Mode request to the connected client; its envelope id."""
        deadline = time.monotonic() + timeout
        while not self._sockets:
            if time.monotonic() > deadline:
                raise AssertionError("no Socket Mode client connected")
            time.sleep(0.05)
        envelope_id = envelope_id or str(uuid.uuid4())
        message = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        _ws_send(self._sockets[-1], json.dumps(message).encode(), 0x1)
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for ack in self.socket_acks:
                    if ack.get("envelope_id") == envelope_id:
                        return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no Socket Mode ack for {envelope_id}")
                self._lock.wait(left)

    # -------------------------------------------------------------- internals

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)
            self._last_call = time.monotonic()
            self._lock.notify_all()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.methods is None or method in fault.methods):
                    fault.remaining -= 1
                    return fault
            return None

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake Team",
                    "user": "faqbot", "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID, "is_enterprise_install": False}
        if method in ("chat.postMessage", "chat.update"):
            ts = params.get("ts") if method == "chat.update" else self._new_ts()
            message = {"type": "message", "text": params.get("text"), "ts": ts,
                       "user": BOT_USER_ID, "bot_id": BOT_ID}
            for key in ("blocks", "thread_ts", "metadata"):
                value = params.get(key)
                if isinstance(value, str) and key != "thread_ts":
                    try:
                        value = json.loads(value)
                    except ValueError:
                        pass
                if value:
                    message[key] = value
            self._keep(str(params.get("channel")), message, update=method == "chat.update")
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": message}
        if method == "conversations.history":
            return self._read_history(params)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._new_ts()}
        if method == "chat.getPermalink":
            if not self.permalinks:
                return {"ok": False, "error": "message_not_found"}
            channel, ts = params.get("channel", ""), str(params.get("message_ts", ""))
            return {"ok": True, "channel": channel,
                    "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(params.get("users", "X"))[:8]}}
        if method == "conversations.members":
            return {"ok": True, "members": [BOT_USER_ID], "response_metadata": {"next_cursor": ""}}
        if method == "users.info":
            user = params.get("user", "U0")
            return {"ok": True, "user": {"id": user, "name": f"user-{user}", "is_bot": False}}
        if method in ("views.publish", "views.open", "views.update"):
            return {"ok": True, "view": {"id": "V" + self._new_ts().replace(".", "")}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket=fake"}
        return {"ok": True}

    def _keep(self, channel: str, message: dict[str, Any], *, update: bool) -> None:
        with self._lock:
            messages = self._history.setdefault(channel, [])
            if update:
                for i, old in enumerate(messages):
                    if old["ts"] == message["ts"]:
                        messages[i] = {**old, **message}
                return
            messages.append(message)

    def _read_history(self, params: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first, within ``oldest``/``latest``, in pages
        of ``limit`` (``cursor`` is the offset), as Slack's ``conversations.history``."""
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or 9e12)
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        with self._lock:
            found = [dict(m) for m in reversed(self._history.get(str(params.get("channel")), []))
                     if oldest < float(m["ts"]) < latest
                     and m.get("thread_ts") in (None, m["ts"])]
        if str(params.get("include_all_metadata")).lower() not in ("1", "true"):
            for m in found:
                m.pop("metadata", None)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages the app posted to ``channel`` (thread replies too), oldest first."""
        with self._lock:
            return [dict(m) for m in self._history.get(channel, [])]

    def _new_ts(self) -> str:
        """Unique and increasing, and near the real clock (as Slack's: history is by time)."""
        n = next(self._ts)
        return f"{self._epoch + n // 1_000_000}.{n % 1_000_000:06d}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY the body of a
            # response on a kept-alive connection waits for the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.startswith("/_control/calls"):  # for a fake in another process
                    calls = [{"method": c.method, "params": c.params, "at": c.at}
                             for c in fake.calls()]
                    self._send(200, json.dumps(calls).encode())
                    return
                if self.path.startswith("/link") and "websocket" in (
                    self.headers.get("Upgrade", "").lower()
                ):
                    fake._serve_websocket(self)
                    return
                self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                if self.path.startswith("/_control/"):
                    control = json.loads(raw or "{}")
                    if self.path.startswith("/_control/reset"):
                        fake.reset()
                    fake.latency = float(control.get("latency", fake.latency))
                    self._send(200, b'{"ok":true}')
                    return
                method = self.path.split("?")[0].rsplit("/", 1)[-1]
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    params = json.loads(raw or "{}")
                else:
                    params = dict(parse_qsl(raw, keep_blank_values=True))
                    params.update(dict(parse_qsl(self.path.partition("?")[2])))
                fake._record(Call(method, params, {k.lower(): v for k, v in self.headers.items()}))
                if fake.latency:
                    time.sleep(fake.latency)
                fault = fake._take_fault(method)
                if fault is not None:
                    if fault.kind in ("close", "lost"):
                        if fault.kind == "lost":  # done, but the response never arrives
                            fake._answer(method, params)
                        self._hang_up()
                        return
                    if fault.kind == "delay":
                        time.sleep(fault.delay)
                    elif fault.kind == "429":
                        self._send(429, b'{"ok":false,"error":"ratelimited"}',
                                   {"Retry-After": str(fault.retry_after)})
                        return
                    elif fault.kind == "500":
                        self._send(500, b'{"ok":false,"error":"internal_error"}')
                        return
                    elif fault.kind == "malformed":
                        self._send(200, b'{"ok": tru')
                        return
                self._send(200, json.dumps(fake._answer(method, params)).encode())

            def _hang_up(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None
                      ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _serve_websocket(self, handler: BaseHTTPRequestHandler) -> None:
        key = handler.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        handler.send_response(101, "Switching Protocols")
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept)
        handler.end_headers()
        handler.wfile.flush()
        sock = handler.connection
        self._sockets.append(sock)
        _ws_send(sock, json.dumps({"type": "hello", "num_connections": 1}).encode(), 0x1)
        try:
            while True:
                frame = _ws_recv(handler.rfile)
                if frame is None:
                    break
                opcode, payload = frame
                if opcode == 0x8:  # close
                    break
                if opcode == 0x9:  # ping -> pong
                    _ws_send(sock, payload, 0xA)
                elif opcode == 0x1:
                    with self._lock:
                        self.socket_acks.append(json.loads(payload))
                        self._lock.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            if sock in self._sockets:
                self._sockets.remove(sock)
            handler.close_connection = True


def _ws_send(sock: socket.socket, payload: bytes, opcode: int) -> None:
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([n])
    elif n < 65536:
        header += bytes([126]) + struct.pack("!H", n)
    else:
        header += bytes([127]) + struct.pack("!Q", n)
    sock.sendall(header + payload)


def _ws_recv(stream: Any) -> tuple[int, bytes] | None:
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, n = head[0] & 0x0F, head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", stream.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", stream.read(8))[0]
    mask = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = stream.read(n)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def main() -> None:
    """``python -m tests.fake_slack``: serve until killed; prints the API URL first."""
    import sys

    fake = FakeSlack().start()
    print(fake.api_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
