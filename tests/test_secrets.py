"""Secrets never leak: ``python -m bot run`` with known token, signing secret and database
password, driven down every path (answers, tickets, buttons, bad signatures, Web API 500s,
the store down, a broken knowledge file), never prints them and never sends them back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import slack_helpers as h
from tests.fault_harness import RecordingFake, TcpProxy, server, wait_until

TOKEN = "xoxb-1111-2222-SECRETTOKENVALUE"
SECRET = "f00dfacecafe5ecre7516n1n65ecre7"
APP_TOKEN = "xapp-1-SECRETAPPTOKENVALUE"
DB_PASSWORD = "Pa55w0rdN0tF0rL0gs"
SECRETS = (TOKEN, SECRET, APP_TOKEN, DB_PASSWORD, "SECRETTOKENVALUE", "SECRETAPPTOKENVALUE")
PG_URL = os.environ.get("TEST_DATABASE_URL")


def _post(base: str, raw: bytes, headers: dict[str, str], **kwargs) -> h.Response:
    return h.post(base + "/slack/events", raw, headers, secret=SECRET, **kwargs)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _drive(base: str, fake: RecordingFake, cut_store=None, restore_store=None
           ) -> list[h.Response]:
    """Every path once; the responses."""
    responses = []
    event = lambda body, **kw: _post(base, *h.event_request(body), **kw)  # noqa: E731
    responses.append(event(h.mention(h.ANSWERABLE)))
    responses.append(event(h.mention(h.UNANSWERABLE)))
    responses.append(event(h.direct_message(h.CAP)))
    ack = _post(base, *h.command_request(h.slash(h.ANSWERABLE)))
    responses.append(ack)
    responses.append(_post(base, *h.command_request(h.slash(h.UNANSWERABLE))))
    button = h.buttons(ack.json()["blocks"])["faq_not_helpful"]
    responses.append(_post(base, *h.action_request(h.click(button, ephemeral=True))))
    # refused: wrong secret, stale, unsigned, garbage
    raw, headers = h.event_request(h.mention(h.UNANSWERABLE))
    responses.append(h.post(base + "/slack/events", raw, headers, secret="wrong"))
    responses.append(_post(base, raw, headers, timestamp=int(time.time()) - 400))
    responses.append(h.post(base + "/slack/events", raw, headers, signed=False))
    responses.append(_post(base, b"{broken", {"Content-Type": "application/json"}))
    # the Web API failing
    fake.go_down("500")
    responses.append(event(h.mention(h.UNANSWERABLE + " during the outage")))
    wait_until(lambda: len([c for c in fake.calls() if c.faulted]) >= 3, 10, "failed calls")
    fake.recover()
    # the store down
    if cut_store is not None:
        cut_store()
        responses.append(event(h.mention(h.UNANSWERABLE + " with the store down")))
        responses.append(_post(base, *h.command_request(h.slash(h.UNANSWERABLE + " again"))))
        fake.wait_quiet(0.5)  # the apologies for the tickets it could not record are out
        restore_store()
    responses.append(h.get(base + "/healthz"))
    responses.append(h.get(base + "/nope"))
    fake.wait_quiet(0.5)  # everything the app does for these requests is done (and logged)
    return responses


def _env(fake: RecordingFake, tmp: Path, **extra: str) -> dict[str, str]:
    env = h.server_env(fake.api_url, tmp, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                       LOG_LEVEL="DEBUG")
    env.update(extra)
    return env


class TestNoSecretsInOutput:
    """Token, signing secret and database password appear in no log line and no response."""

    @pytest.mark.slow
    def test_sqlite_every_path(self, tmp_path: Path) -> None:
        """Answers, tickets, buttons, refusals and Web API outages, at DEBUG log level."""
        with RecordingFake() as fake, server(_env(fake, tmp_path), tmp_path) as (_p, base, log):
            responses = _drive(base, fake)
            output = log.read_text(errors="replace")
        assert "connected to Slack" in output  # the logs were really captured
        assert "refused" in output or "invalid" in output.lower()
        assert _leaks(output) == [], [line for line in output.splitlines() if _leaks(line)][:5]
        for response in responses:
            assert _leaks(repr(response.headers) + response.body.decode(errors="replace")) == []
        # the token went where it belongs, and only there
        assert all(c.headers.get("authorization") == f"Bearer {TOKEN}" for c in fake.calls())
        assert not any(_leaks(repr(c.params)) for c in fake.calls())

    @pytest.mark.slow
    @pytest.mark.postgres
    @pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (a PostgreSQL server)")
    def test_postgres_with_password_and_store_down(self, tmp_path: Path) -> None:
        """The same on PostgreSQL with a password in DATABASE_URL, the store cut mid-run."""
        url = sa.make_url(PG_URL)
        proxy = TcpProxy(url.port or 5432)
        schema = f"secrets_{os.getpid()}_{int(time.time())}"  # fresh: no earlier deliveries
        admin = sa.create_engine(url.set(drivername="postgresql+psycopg"))
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        db = url.set(host="127.0.0.1", port=proxy.port, password=DB_PASSWORD,
                     query={"options": f"-csearch_path={schema}"})
        try:
            with RecordingFake() as fake, server(
                _env(fake, tmp_path, DATABASE_URL=db.render_as_string(hide_password=False)),
                tmp_path,
            ) as (_p, base, log):
                responses = _drive(base, fake, proxy.cut, proxy.restore)
                output = log.read_text(errors="replace")
        finally:
            proxy.close()
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
        assert "connection" in output.lower()  # the outage was logged …
        assert _leaks(output) == [], [line for line in output.splitlines() if _leaks(line)][:5]
        for response in responses:
            assert _leaks(repr(response.headers) + response.body.decode(errors="replace")) == []

    @pytest.mark.parametrize("problem", ["broken knowledge", "unreachable store", "bad token"])
    def test_start_up_failures(self, tmp_path: Path, problem: str) -> None:
        """Start-up failures name the problem without printing any secret."""
        with RecordingFake() as fake:
            env = _env(fake, tmp_path, DATABASE_URL=f"postgresql://faqbot:{DB_PASSWORD}"
                       "@127.0.0.1:1/none", SLACK_APP_TOKEN="")
            if problem == "broken knowledge":
                Path(env["KNOWLEDGE_PATH"]).write_text("a: &x [*x]\n", encoding="utf-8")
            elif problem == "bad token":
                env["DATABASE_URL"] = f"sqlite:///{tmp_path / 't.sqlite3'}"
                fake.go_down("500", methods={"auth.test"})
            result = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, cwd=h.ROOT,
                                    capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert output.strip()
        assert _leaks(output) == [], output
