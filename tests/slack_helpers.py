"""Signed Slack requests built exactly as Slack builds them, and the payload fixtures.

The payloads in ``tests/data/slack/`` are copies of real ones (see ``README.md`` there).
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

DATA = Path(__file__).resolve().parent / "data" / "slack"
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
ROOT = Path(__file__).resolve().parent.parent

SLACK_KB = """\
version: 1
title: Test FAQ
support: "Ask in #help or use https://example.com/support"
thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}
synonyms:
  - [rejected, declined, denied]
handoff:
  - talk to a human
entries:
  - id: review-time
    question: How long does the app review process take?
    phrasings: [review eta, how long is the review, when will approval come]
    answer: App review may take *several days* to two weeks after submission.
    tags: [review]
    links:
      - {title: Review guidelines, url: "https://example.com/review"}
  - id: not-approved
    question: Why was my app not approved?
    phrasings: [app rejected, why was my app declined]
    answer: Apps are not approved for various reasons.
    tags: [review]
  - id: cap
    question: Can I increase my active user cap?
    phrasings: [raise the user limit, need more users allowed]
    answer: Please contact us via our Support form to request an increase in your active user cap.
    tags: [limits]
    ticket: cap_increase
"""

ANSWERABLE = "how long is the review"
UNANSWERABLE = "what is the weather like on mars today"
CLARIFY = "why review app"
CAP = "can I raise the user limit"


def payload(name: str) -> dict[str, Any]:
    """A deep copy of ``tests/data/slack/<name>.json`` (``body`` or ``fields``)."""
    data = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(data.get("body") or data.get("fields"))


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
         ) -> dict[str, str]:
    """The headers Slack sends: X-Slack-Request-Timestamp and X-Slack-Signature (v0)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def event_request(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"Content-Type": "application/json"}


def command_request(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def action_request(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = urlencode({"payload": json.dumps(body)}).encode()
    return raw, {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def post(url: str, raw: bytes, headers: dict[str, str], *, signed: bool = True,
         timestamp: int | None = None, secret: str = SIGNING_SECRET,
         extra: dict[str, str] | None = None, timeout: float = 10.0) -> Response:
    """POST ``raw`` to ``url``, signed like Slack (unless ``signed`` is False)."""
    all_headers = dict(headers)
    if signed:
        all_headers.update(sign(raw, secret=secret, timestamp=timestamp))
    all_headers.update(extra or {})
    request = urllib.request.Request(url, data=raw, headers=all_headers, method="POST")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Response(response.status, response.read(), dict(response.headers),
                            time.perf_counter() - start)
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), dict(exc.headers), time.perf_counter() - start)


def get(url: str, timeout: float = 5.0) -> Response:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Response(response.status, response.read(), dict(response.headers),
                            time.perf_counter() - start)
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), dict(exc.headers), time.perf_counter() - start)


_counter = iter(range(1, 10**9))


def mention(text: str, *, channel: str = "C111", user: str = "W222",
            thread_ts: str | None = None) -> dict[str, Any]:
    """The real ``app_mention`` payload with fresh ids and ``text``."""
    body = payload("event_app_mention_basic")
    n = next(_counter)
    ts = f"{1600000000 + n}.{n:06d}"
    body["event_id"] = f"EvM{n:08d}"
    body["event"].update(text=f"<@UBOT> {text}", ts=ts, event_ts=ts, channel=channel, user=user)
    if thread_ts:
        body["event"]["thread_ts"] = thread_ts
    return body


def direct_message(text: str, *, user: str = "W222") -> dict[str, Any]:
    body = payload("event_message_im_basic")
    n = next(_counter)
    ts = f"{1610000000 + n}.{n:06d}"
    body["event_id"] = f"EvD{n:08d}"
    body["event"].update(text=text, ts=ts, event_ts=ts, user=user)
    return body


def channel_message(text: str, *, channel: str) -> dict[str, Any]:
    """A plain top-level channel message (the real file_share payload minus its files)."""
    body = payload("event_message_file_share")
    n = next(_counter)
    ts = f"{1620000000 + n}.{n:06d}"
    event = body["event"]
    for key in ("files", "upload", "subtype", "blocks", "display_as_bot"):
        event.pop(key, None)
    event.update(text=text, ts=ts, event_ts=ts, channel=channel, user="W333")
    body["event_id"] = f"EvC{n:08d}"
    return body


def slash(text: str, *, user: str = "W111", channel: str = "C111") -> dict[str, str]:
    fields = payload("command_slash_basic")
    n = next(_counter)
    fields.update(command="/faq", text=text, user_id=user, channel_id=channel,
                  trigger_id=f"111.{n}.xxx")
    return fields


def click(button: dict[str, Any], *, user: str = "W222", channel: str = "C111",
          message: dict[str, Any] | None = None, message_ts: str = "111.222",
          thread_ts: str | None = None, ephemeral: bool = False) -> dict[str, Any]:
    """The real block_actions payload, clicking ``button`` (a button element we posted)."""
    body = payload("interactive_block_actions_button")
    body["user"]["id"] = user
    body["channel"]["id"] = channel
    body["container"].update(channel_id=channel, message_ts=message_ts, is_ephemeral=ephemeral)
    if thread_ts:
        body["container"]["thread_ts"] = thread_ts
    if message is not None:
        body["message"] = message
    body["actions"][0].update(action_id=button["action_id"], value=button["value"],
                              text=button["text"], block_id="faq_feedback")
    return body


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The buttons in ``blocks`` by action id."""
    return {e["action_id"]: e for b in blocks if b.get("type") == "actions"
            for e in b["elements"]}


def _ports() -> Iterator[int]:
    """Ports for servers this test process starts: a block of its own per pytest-xdist
    worker, below the kernel's ephemeral range (32768 and up), each handed out once. A port
    the kernel picks (bind to 0, close, pass it on) may be picked again by another worker
    before the server binds it, and two servers on one port answer each other's tests."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    first = 20000 + (index % 6) * 2000
    while True:
        yield from range(first, first + 2000)


_PORTS = _ports()
_PORTS_LOCK = threading.Lock()


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and that no other test process will choose."""
    with _PORTS_LOCK:
        for port in _PORTS:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("unreachable")


def server_env(api_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment ``faqbot run`` gets in the tests: fake Slack, temp SQLite, small KB."""
    knowledge = tmp / "faq.yaml"
    knowledge.write_text(SLACK_KB, encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "FAQ", "SUPPORT_", "DATABASE_", "GUNICORN"))}
    env.update({
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "SUPPORT_CHANNEL_ID": "CSUPPORT",
        "KNOWLEDGE_PATH": str(knowledge),
        "DATABASE_URL": f"sqlite:///{tmp / 'tickets.sqlite3'}",
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def start_server(env: dict[str, str], folder: Path, *, run_in: Path | None = None,
                 new_session: bool = False, code: str | None = None, timeout: float = 20.0
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """``faqbot run`` in a subprocess (``python -m bot run``, or ``python -c code``) on a free
    port (:func:`free_port`), logging to ``folder/server-PORT.log``; waits for /healthz. If
    something binds the port first, the server is started again on another."""
    args = [sys.executable, "-c", code] if code else [sys.executable, "-m", "bot", "run"]
    for attempt in range(3):
        try:
            return _start_server(args, env, folder, run_in or folder, new_session, timeout)
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_server(args: list[str], env: dict[str, str], folder: Path, run_in: Path,
                  new_session: bool, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_path = folder / f"server-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, env={**env, "PORT": str(port)},
                                cwd=run_in, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=new_session)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n"
                               + log_path.read_text(errors="replace"))
        try:
            if get(base + "/healthz", timeout=1).status == 200:
                return proc, base
        except OSError:
            pass
        time.sleep(0.1)
    if new_session:
        os.killpg(proc.pid, 9)
    proc.kill()
    proc.wait(10)
    raise RuntimeError("server did not become healthy:\n" + log_path.read_text(errors="replace"))


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class SignedRequests:
    """Send signed events, commands and interactivity to ``self.url`` (an in-process app)."""

    url: str

    def event(self, body: dict[str, Any], **kwargs: Any) -> Response:
        raw, headers = event_request(body)
        return post(self.url, raw, headers, **kwargs)

    def command(self, fields: dict[str, str]) -> Response:
        raw, headers = command_request(fields)
        return post(self.url, raw, headers)

    def action(self, body: dict[str, Any]) -> Response:
        raw, headers = action_request(body)
        return post(self.url, raw, headers)
