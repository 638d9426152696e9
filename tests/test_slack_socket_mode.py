"""`faqbot run` in Socket Mode (SLACK_APP_TOKEN set), in a subprocess, against the fake
Slack's WebSocket (tests/fake_slack.py): apps.connections.open → ws://127.0.0.1 → envelopes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests import slack_helpers as h
from tests.fake_slack import FakeSlack


@pytest.fixture(scope="module")
def socket_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSlack]:
    tmp = tmp_path_factory.mktemp("socket-mode")
    with FakeSlack() as fake:
        env = h.server_env(fake.api_url, tmp, SLACK_APP_TOKEN="xapp-1-test")
        env.pop("SLACK_SIGNING_SECRET")  # not needed in Socket Mode
        log = open(tmp / "socket.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not fake._sockets:  # noqa: SLF001 - wait for the WebSocket
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "socket.log").read_text(errors="replace"))
                time.sleep(0.05)
            yield fake
        finally:
            h.stop_server(proc)
            log.close()


class TestSocketMode:
    def test_connects_with_app_token(self, socket_app: FakeSlack) -> None:
        """It opens the connection with the app-level token, not the bot token."""
        (call,) = socket_app.calls("apps.connections.open")
        assert call.headers["authorization"] == "Bearer xapp-1-test"

    def test_mention_acked_and_answered(self, socket_app: FakeSlack) -> None:
        """An app_mention envelope is acked and answered in a thread."""
        socket_app.reset()
        body = h.mention(h.ANSWERABLE)
        envelope = socket_app.send_envelope(body)
        socket_app.wait_for_ack(envelope)
        (reply,) = socket_app.wait_for("chat.postMessage", 1)
        assert reply.params["thread_ts"] == body["event"]["ts"]
        assert "several days" in reply.params["text"]

    def test_retry_answered_once(self, socket_app: FakeSlack) -> None:
        """A redelivered envelope (retry_attempt 1) produces no second reply."""
        socket_app.reset()
        body = h.mention(h.UNANSWERABLE)
        socket_app.wait_for_ack(socket_app.send_envelope(body))
        socket_app.wait_for_ack(socket_app.send_envelope(body, retry_attempt=1))
        socket_app.wait_for("chat.postMessage", 2)  # reply + triage
        socket_app.wait_quiet(0.5)
        assert len(socket_app.calls("chat.postMessage")) == 2

    def test_slash_command_answer_in_ack(self, socket_app: FakeSlack) -> None:
        """/faq over Socket Mode carries the ephemeral answer in the ack payload."""
        socket_app.reset()
        envelope = socket_app.send_envelope(h.slash(h.ANSWERABLE), kind="slash_commands")
        ack = socket_app.wait_for_ack(envelope)
        assert ack["payload"]["response_type"] == "ephemeral"
        assert "several days" in ack["payload"]["text"]
