"""The gate in front of Bolt's WSGI handler: size, signature, then shape, before Bolt parses.

Bolt parses a request's body *before* it verifies the signature, and raises on anything it
cannot parse (invalid JSON, a form whose ``payload`` is not JSON, bytes that are not UTF-8):
the server answers 500, unsigned junk included, and Slack retries a 500. :class:`RequestGuard`
answers those itself, in this order:

- no signature headers, or a timestamp more than 5 minutes away: 401;
- a body larger than :data:`MAX_BODY`: 413 (it is not read);
- a signature that does not verify: 401;
- a body that is not UTF-8, not JSON / form-encoded, not a JSON object, or whose objects
  Bolt and the listeners dereference (``event``, ``actions``, ``view``…) have the wrong type: 400.

Everything else reaches Bolt unchanged, which verifies the signature again. One exception: a
form body that contains the text ``payload`` outside a ``payload`` field (``/faq what is a
payload``) makes Bolt parse it as an empty request (404); such a body is re-encoded (``p`` as
``%70``, the same form data) and re-signed for Bolt with the same timestamp::

    wsgi = RequestGuard(SlackRequestHandler(app), settings.slack_signing_secret)
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["MAX_BODY", "RequestGuard", "check_payload", "signature_ok"]

log = logging.getLogger(__name__)

#: Largest request body accepted. Slack's biggest payloads (a 40,000-character message with its
#: blocks, a modal's state) are far below it.
MAX_BODY = 1024 * 1024
#: Slack's replay window: a request whose timestamp is further away is refused.
MAX_SKEW = 5 * 60

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Keys Slack always sends as objects when present (Bolt and the listeners call ``.get`` on
# them); the first ones are never null either. Anything else there is a forged or broken payload.
_OBJECTS = ("event", "view", "container", "message", "user", "channel", "team", "state")
_NEVER_NULL = ("event", "view", "container", "message", "actions")
#: A body this much over the limit is not even drained before the 413 (the connection closes).
_DRAIN_LIMIT = 16 * 1024 * 1024
# Event fields read as text by the predicates in bot.slack.events (regexes, comparisons).
_EVENT_TEXT = ("type", "subtype", "text", "user", "channel", "ts", "thread_ts", "event_ts",
               "channel_type", "bot_id")


def signature_ok(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's v0 signature over the raw bytes (no decoding, so any bytes can be checked)."""
    if not secret or not timestamp.isascii():
        return False
    return hmac.compare_digest(_sign(secret, body, timestamp), signature)


def _fresh(timestamp: str, now: float) -> bool:
    try:
        return abs(now - int(timestamp)) <= MAX_SKEW
    except ValueError:
        return False


def check_payload(payload: Any) -> str | None:
    """Why a parsed Slack payload is unusable, or None when its shape is sound."""
    if not isinstance(payload, dict):
        return "the payload is not a JSON object"
    for key in _NEVER_NULL:
        if key in payload and payload[key] is None:
            return f"'{key}' is null"
    for key in _OBJECTS:
        value = payload.get(key)
        if value is not None and not isinstance(value, dict):
            if key in ("user", "channel", "team") and isinstance(value, str) and (
                "event" in payload or "command" in payload
            ):
                continue  # events and commands may carry plain ids here
            return f"'{key}' is not an object"
    actions = payload.get("actions")
    if actions is not None and not (
        isinstance(actions, list) and all(isinstance(a, dict) for a in actions)
    ):
        return "'actions' is not a list of objects"
    event = payload.get("event")
    if isinstance(event, dict):
        for key in _EVENT_TEXT:
            value = event.get(key)
            if value is not None and not isinstance(value, str):
                return f"'event.{key}' is not a string"
    for key in ("type", "event_id", "team_id", "api_app_id"):
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            return f"'{key}' is not a string"
    return None


def _parse(text: str, content_type: str) -> tuple[Any, bool]:
    """(the payload as Bolt will see it, whether it is a form without a ``payload`` field)."""
    if content_type.startswith("application/json") or text.startswith("{"):
        return json.loads(text), False
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in fields:
        return json.loads(fields["payload"]), False
    return fields, True


class RequestGuard:
    """WSGI middleware for ``POST /slack/events`` (see the module docstring).

    Args:
        app: the WSGI app behind it (Bolt's ``SlackRequestHandler``).
        signing_secret: ``SLACK_SIGNING_SECRET``; when empty every request is refused.
        max_body: the largest body accepted, in bytes.
        path: the Slack URL; other paths pass through untouched.
        clock: seconds since the epoch (tests).
    """

    def __init__(self, app: WsgiApp, signing_secret: str | None, *, max_body: int = MAX_BODY,
                 path: str = "/slack/events", clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.path = path
        self.secret = signing_secret or ""
        self.max_body = max_body
        self.clock = clock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return self.app(environ, start_response)
        timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        if not timestamp or not signature or not _fresh(timestamp, self.clock()):
            log.info("refused a request without a valid signature or with a stale timestamp")
            return _reply(start_response, 401, "invalid request")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return _reply(start_response, 400, "bad request")
        if length > self.max_body:
            log.warning("refused a %d-byte request (the limit is %d)", length, self.max_body)
            if length <= _DRAIN_LIMIT:  # read and drop it, so the client sees the 413
                stream = environ["wsgi.input"]
                while length > 0 and (chunk := stream.read(min(length, 65536))):
                    length -= len(chunk)
            return _reply(start_response, 413, "request too large")
        body = environ["wsgi.input"].read(length) if length else b""
        if not signature_ok(self.secret, body, timestamp, signature):
            log.info("refused a request whose signature does not verify")
            return _reply(start_response, 401, "invalid request")
        content_type = str(environ.get("CONTENT_TYPE") or "").lower()
        try:
            text = body.decode("utf-8")
            payload, plain_form = _parse(text, content_type) if text else ({}, False)
        except (UnicodeDecodeError, ValueError) as exc:
            log.warning("refused a signed request that cannot be parsed: %s", type(exc).__name__)
            return _reply(start_response, 400, "bad request")
        problem = check_payload(payload)
        if problem is not None:
            log.warning("refused a signed request: %s", problem)
            return _reply(start_response, 400, "bad request")
        if plain_form and "payload" in text:
            # Bolt takes any form body containing "payload" for an interactivity payload.
            body = text.replace("payload", "%70ayload").encode()
            environ["HTTP_X_SLACK_SIGNATURE"] = _sign(self.secret, body, timestamp)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            return self.app(environ, start_response)
        except Exception:  # Bolt raised outside its own error handling (a payload it misread)
            log.exception("a signed request failed before any listener ran")
            return _reply(start_response, 400, "bad request")


def _sign(secret: str, body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _reply(start_response: StartResponse, status: int, error: str) -> list[bytes]:
    body = json.dumps({"error": error}).encode()
    reason = {400: "Bad Request", 401: "Unauthorized", 413: "Payload Too Large"}[status]
    start_response(f"{status} {reason}", [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
