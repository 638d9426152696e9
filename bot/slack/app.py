"""Building the Bolt app: the Web API client, the shared context, and the listeners.

Usage::

    client = make_client(settings)
    app = build_app(settings, lambda: kb, store, client)
    SlackRequestHandler(app)   # or SocketModeHandler(app, settings.slack_app_token)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltRequest
from slack_bolt.middleware.authorization import SingleTeamAuthorization
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from bot.config import Settings
from bot.slack.context import Faqbot, KnowledgeProvider, RequestMiddleware
from bot.slack.listeners import register
from bot.slack.staff_blocks import triage_builder
from bot.slack.triage import Triage
from bot.slack.webclient import KeepAliveWebClient
from bot.tickets import TicketStore

__all__ = ["Faqbot", "KnowledgeProvider", "build_app", "make_client"]

log = logging.getLogger(__name__)

#: Seconds the Web API client waits for one response. Long enough that a slow Slack is not
#: mistaken for a dead one (a read timeout is not retried: the post may have gone through).
API_TIMEOUT = 15
#: Longest wait a 429's Retry-After may impose on one call before we give up on it.
MAX_RETRY_AFTER = 30.0
#: Threads running listeners after the ack: Web API calls are I/O, so many can wait at once.
LISTENER_THREADS = 32
#: Listener runs waiting for a thread, at most: past it the next request waits for a place
#: before it is acked, so a burst slows the acks down instead of growing a backlog in memory.
LISTENER_BACKLOG = 64
#: Threads answering messages and finishing work after the ack. Bolt's listener threads only
#: hand work over to these, so an ack never queues behind answers being written.
BACKGROUND_THREADS = 16


class BoundedExecutor(ThreadPoolExecutor):
    """A thread pool whose queue is bounded: ``submit`` waits while ``max_workers +
    backlog`` calls are running or waiting. Only for callers outside the pool (a task that
    submits to its own full pool would wait for itself)."""

    def __init__(self, max_workers: int, backlog: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self._places = threading.BoundedSemaphore(max_workers + backlog)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self._places.acquire()
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._places.release()
            raise
        future.add_done_callback(lambda _: self._places.release())
        return future


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Slack's RateLimitErrorRetryHandler (honours ``Retry-After``), but never sleeps longer
    than ``max_wait`` seconds and tolerates a malformed header."""

    def __init__(self, max_retry_count: int = 2, max_wait: float = MAX_RETRY_AFTER) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # pragma: no cover - _can_retry needs a response
            raise error  # type: ignore[misc]
        wait = 1.0
        for key, values in response.headers.items():
            if key.lower() == "retry-after" and values:
                try:
                    wait = float(values[0])
                except (TypeError, ValueError):
                    pass
        state.next_attempt_requested = True
        time.sleep(min(max(wait, 0.0), self.max_wait) + random.random() * 0.2)
        state.increment_current_attempt()


def retry_handlers() -> list[RetryHandler]:
    """Bounded retries: 429 (after Retry-After), 500/503, and refused or reset connections."""
    return [
        BoundedRateLimitRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
        ConnectionErrorRetryHandler(max_retry_count=2),
    ]


def make_client(settings: Settings) -> WebClient:
    """The Web API client: ``SLACK_API_URL`` as base URL, bounded retries, a timeout, and
    connections kept open between calls (:mod:`bot.slack.webclient`)."""
    kwargs: dict[str, Any] = {}
    if settings.slack_api_url:
        base = settings.slack_api_url
        kwargs["base_url"] = base if base.endswith("/") else base + "/"
    return KeepAliveWebClient(
        token=settings.slack_bot_token,
        timeout=settings.slack_api_timeout or API_TIMEOUT,
        retry_handlers=retry_handlers(),
        **kwargs,
    )


class _DropTokenSkippedWarning(logging.Filter):
    """Bolt warns that ``SLACK_BOT_TOKEN`` is unused when a client is given: it is expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


_bolt_logger = logging.getLogger("faqbot.bolt")
_bolt_logger.addFilter(_DropTokenSkippedWarning())


def build_app(
    settings: Settings,
    kb_provider: KnowledgeProvider,
    store: TicketStore,
    client: WebClient | None = None,
    *,
    triage: Triage | None = None,
    auth_test: SlackResponse | None = None,
    background: ThreadPoolExecutor | None = None,
) -> App:
    """A Bolt app answering mentions, DMs, ``/faq`` and the answer buttons.

    Args:
        kb_provider: returns the current knowledge on every call (live reload swaps it).
        client: the Web API client; default :func:`make_client`.
        triage: posts tickets to ``SUPPORT_CHANNEL_ID``; default a new :class:`Triage` with
            the staff buttons (its retry loop is not started here: the caller starts it once
            per process).
        auth_test: an ``auth.test`` result already fetched; saves a call on the first request.
        background: the pool that answers messages and finishes work after acks; the caller
            owns it (and drains it at shutdown). Default: a new one.
    """
    client = client or make_client(settings)
    executor = BoundedExecutor(LISTENER_THREADS, LISTENER_BACKLOG, thread_name_prefix="faqbot-listener")
    app = App(
        client=client,
        # Socket Mode needs no signing secret (requests arrive over our own WebSocket).
        signing_secret=settings.slack_signing_secret or "",
        token_verification_enabled=False,
        process_before_response=False,  # ack first; listeners run on the pool below
        listener_executor=executor,
        logger=_bolt_logger,
        name="faqbot",
    )

    def kept_alive_client(request: BoltRequest) -> None:
        # Bolt hands each request a new WebClient with the app client's token and settings,
        # which opens a new connection for every call; listeners get the app's own client
        # instead, whose connections stay open (bot/slack/webclient.py). Safe here: one
        # workspace, one token, and no listener changes the client.
        request.context["client"] = client

    app.middleware(RequestMiddleware(kept_alive_client))

    if auth_test is not None:
        # Bolt calls auth.test on the first request when it has no result yet; hand it ours.
        for middleware in app._middleware_list:  # noqa: SLF001 - no public setter exists
            if isinstance(middleware, SingleTeamAuthorization):
                middleware.auth_test_result = auth_test
    if triage is None:
        triage = Triage(client, store, settings.support_channel_id,
                        message_builder=triage_builder(kb_provider))
    if auth_test is not None and triage.workspace_url is None:
        url = auth_test.get("url")  # permalinks without a chat.getPermalink call per ticket
        triage.workspace_url = str(url) if url else None
    if background is None:
        background = ThreadPoolExecutor(BACKGROUND_THREADS, thread_name_prefix="faqbot-background")
    register(app, Faqbot(settings, kb_provider, store, triage, background))
    return app
