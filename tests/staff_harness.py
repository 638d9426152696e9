"""An in-process faqbot for the staff-side tests: the real Bolt app (``build_app``) behind the
real WSGI wrapper, served over HTTP on 127.0.0.1, against the fake Web API, with a SQLite store
and a :class:`~bot.reload.KnowledgeHolder` the tests can reach into.

Requests are signed exactly like Slack's (``tests.slack_helpers``). In process, a test can
also look at the store directly (a refused click must leave the ticket unchanged).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.config import Settings
from bot.reload import KnowledgeHolder
from bot.slack.app import build_app, make_client
from bot.slack.server import HealthzWrapper
from bot.slack.staff_blocks import triage_builder
from bot.slack.triage import Triage
from bot.tickets import Ticket, open_store
from tests import slack_helpers as h
from tests.fake_slack import Call, FakeSlack

SUPPORT = "CSUPPORT"
STAFF = "WSTAFF"  # a member of the triage channel
LEAD = "WLEAD"  # not a member, but in SUPPORT_USER_IDS
REQUESTER = "W222"
OUTSIDER = "W999"


class StaffFakeSlack(FakeSlack):
    """The fake Web API, with a triage channel whose members are :attr:`members`."""

    def __init__(self) -> None:
        super().__init__()
        self.members = ["UBOT", STAFF]

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "conversations.members":
            return {"ok": True, "members": list(self.members),
                    "response_metadata": {"next_cursor": ""}}
        return super()._answer(method, params)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class StaffServer(h.SignedRequests):
    """faqbot served in process; :meth:`close` stops it."""

    def __init__(self, tmp: Path, *, holder: bool = True) -> None:
        self.fake = StaffFakeSlack().start()
        self.kb_path = tmp / "faq.yaml"
        self.kb_path.write_text(h.SLACK_KB, encoding="utf-8")
        self.settings = Settings(
            slack_bot_token=h.BOT_TOKEN,
            slack_signing_secret=h.SIGNING_SECRET,
            slack_api_url=self.fake.api_url,
            support_channel_id=SUPPORT,
            support_user_ids=frozenset({LEAD}),
            knowledge_path=str(self.kb_path),
            database_url=f"sqlite:///{tmp / 'tickets.sqlite3'}",
        )
        self.store = open_store(self.settings.database_url)
        self.holder = KnowledgeHolder(self.kb_path)
        client = make_client(self.settings)
        provider = self.holder if holder else (lambda: self.holder.current)
        self.triage = Triage(client, self.store, SUPPORT, message_builder=triage_builder(provider))
        self.app = build_app(self.settings, provider, self.store, client, triage=self.triage)
        wsgi = HealthzWrapper(self.app, provider)
        self._httpd = make_server("127.0.0.1", 0, wsgi, server_class=_ThreadingWSGIServer,
                                  handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/slack/events"

    def fresh(self) -> StaffServer:
        """Ready for the next test: the previous test's late calls waited out, then forgotten."""
        self.fake.settle()
        self.fake.reset()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self.fake.stop()
        self.store.close()

    # ------------------------------------------------------------------ requests

    # ------------------------------------------------------------------ inspection

    def posts(self, channel: str | None = None, thread_ts: str | None = None) -> list[Call]:
        return [c for c in self.fake.calls("chat.postMessage")
                if (channel is None or c.params.get("channel") == channel)
                and (thread_ts is None or c.params.get("thread_ts") == thread_ts)]

    def wait(self, predicate: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError("timed out; calls: " + str([c.method for c in self.fake.calls()]))

    def quiet(self, seconds: float = 0.4) -> None:
        """Wait until the app has gone quiet (see FakeSlack.wait_quiet)."""
        self.fake.wait_quiet(seconds)

    def only(self, find: Any, timeout: float = 10.0) -> Any:
        """The one call ``find()`` returns, counted once it returns any and the app has gone
        quiet (a late duplicate makes it two, and the check fails)."""
        self.wait(find, timeout)
        self.quiet()
        found = find()
        assert len(found) == 1, found
        return found[0]

    # ------------------------------------------------------------------ scenarios

    def open_ticket(self, question: str = h.UNANSWERABLE, *, user: str = REQUESTER,
                    channel: str = "C111") -> tuple[Ticket, Call, Call]:
        """A mention that becomes a ticket: (ticket as posted, requester reply, triage post)."""
        body = h.mention(question, user=user, channel=channel)
        self.event(body)
        ts = body["event"]["ts"]
        told = self.wait(lambda: self.posts(channel, ts))[0]
        triage = self.wait(lambda: self.posts(SUPPORT))[0]
        ticket = self.wait(lambda: self._posted(channel, ts))
        self.fake.reset()
        return ticket, told, triage

    def _posted(self, channel: str, ts: str) -> Ticket | None:
        ticket = self.store.find_by_thread(channel, ts)
        return ticket if ticket is not None and ticket.posted else None

    def ticket(self, number: int) -> Ticket:
        ticket = self.store.get(number)
        assert ticket is not None
        return ticket


def triage_click(element: dict[str, Any], ticket: Ticket, *, user: str,
                 post: Call | None = None, selected: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The real block_actions payload: ``user`` clicks ``element`` on the triage message."""
    message = None
    if post is not None:
        message = {"type": "message", "ts": ticket.triage_ts, "text": post.params["text"],
                   "blocks": post.blocks, "user": "UBOT", "bot_id": "BBOT"}
    if selected is not None:  # a static_select has no value or text of its own
        element = {**element, "value": "", "text": {"type": "plain_text", "text": ""}}
    body = h.click(element, user=user, channel=SUPPORT, message=message,
                   message_ts=str(ticket.triage_ts))
    body["actions"][0]["block_id"] = f"faq_ticket_{ticket.number}"
    if selected is not None:
        action = body["actions"][0]
        action.pop("value", None)
        action.pop("text", None)
        action.update(type="static_select", selected_option=selected)
    return body


def elements(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every interactive element in ``blocks`` (actions blocks and accessories) by action id."""
    found: dict[str, dict[str, Any]] = {}
    for block in blocks:
        for element in block.get("elements") or []:
            if "action_id" in element:
                found[element["action_id"]] = element
        accessory = block.get("accessory")
        if accessory and "action_id" in accessory:
            found[accessory["action_id"]] = accessory
    return found


def options(select: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for group in select.get("option_groups", []) for o in group["options"]] + list(
        select.get("options", []))


def thread_reply(text: str, *, channel: str, thread_ts: str, user: str,
                 channel_type: str = "channel", **extra: Any) -> dict[str, Any]:
    """A person's reply in a thread (the real thread_broadcast payload made a plain reply)."""
    body = h.payload("event_message_thread_broadcast")
    n = next(h._counter)
    ts = f"{1630000000 + n}.{n:06d}"
    event = body["event"]
    for key in ("subtype", "root"):
        event.pop(key, None)
    event.update(text=text, ts=ts, event_ts=ts, channel=channel, thread_ts=thread_ts,
                 user=user, channel_type=channel_type, client_msg_id=f"msg-{n}", **extra)
    body["event_id"] = f"EvR{n:08d}"
    return body


def texts(call: Call) -> str:
    return json.dumps(call.texts())


def copy_body(body: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(body)
