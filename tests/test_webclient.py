"""The Web API client keeps its connections open between calls, and fails like WebClient."""

from __future__ import annotations

import http.client

import pytest
from slack_sdk.errors import SlackApiError

from bot.slack.webclient import KeepAliveWebClient
from tests.fake_slack import FakeSlack


@pytest.fixture
def fake():
    with FakeSlack() as slack:
        yield slack


def client_for(fake: FakeSlack, **kwargs) -> KeepAliveWebClient:
    return KeepAliveWebClient(token="xoxb-test", base_url=fake.api_url, timeout=5, **kwargs)


def kept_socket(client: KeepAliveWebClient):
    (conn,) = client._local.conns.values()
    return conn.sock


class TestKeepAlive:
    def test_calls_from_one_thread_share_one_connection(self, fake):
        """Consecutive calls reuse the connection instead of opening one per call."""
        client = client_for(fake)
        assert client.auth_test()["ok"]
        first = kept_socket(client)
        assert first is not None
        assert client.chat_postMessage(channel="C1", text="hi")["ok"]
        assert kept_socket(client) is first
        assert [c.method for c in fake.calls()] == ["auth.test", "chat.postMessage"]

    def test_a_kept_connection_the_server_closed_is_replaced(self, fake):
        """A request that could not be sent on a dead kept connection goes out once on a new
        one: it cannot have been processed, and it is not lost."""
        client = client_for(fake)
        client.auth_test()
        kept_socket(client).close()  # as if the server had dropped the idle connection
        assert client.chat_postMessage(channel="C1", text="hi")["ok"]
        assert len(fake.calls("chat.postMessage")) == 1

    def test_a_connection_lost_after_sending_is_not_resent(self, fake):
        """The server got the request and hung up: the call fails (as with WebClient), and
        the request is not sent again behind the caller's back."""
        client = client_for(fake, retry_handlers=[])  # as the triage poster: no retries
        client.auth_test()
        fake.fail("close", methods={"chat.postMessage"})
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            client.chat_postMessage(channel="C1", text="hi")
        assert len(fake.calls("chat.postMessage")) == 1
        assert client.chat_postMessage(channel="C1", text="again")["ok"]  # a new connection

    def test_error_statuses_surface_as_slack_api_errors(self, fake):
        """A 500 reaches the caller as WebClient reports it, with the status."""
        client = client_for(fake)
        fake.fail("500")
        with pytest.raises(SlackApiError) as raised:
            client.auth_test()
        assert raised.value.response.status_code == 500
        assert client.auth_test()["ok"]
