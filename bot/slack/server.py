"""``faqbot run``: Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise HTTP under gunicorn.

HTTP serves one Slack URL, ``POST /slack/events`` (events, interactivity and ``/faq``), plus
``GET /healthz``. Bolt's ``App.start()`` is a development server, so the Bolt WSGI adapter runs
under gunicorn, started from Python (:class:`GunicornServer`).

Start-up checks everything it can before serving: the required variables (each missing one is
named), the knowledge file, the ticket store, and the bot token (``auth.test``, whose identity
is logged). Tokens and the signing secret are never logged.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.config import Settings
from bot.errors import FaqbotError
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.slack.app import KnowledgeProvider, build_app, make_client
from bot.slack.triage import Triage
from bot.tickets import TicketStore, open_store

__all__ = ["GunicornServer", "HealthzWrapper", "WorkerSetup", "run"]

log = logging.getLogger("faqbot")

#: Chosen by measurement (bench/bench_slack.py): gthread workers with several threads each,
#: and Bolt's default listener mode (ack first, answer on a thread pool).
DEFAULT_WORKERS = 2
DEFAULT_WORKER_CLASS = "gthread"
DEFAULT_THREADS = 8
DEFAULT_LAZY = False

StartResponse = Callable[..., Any]


class HealthzWrapper:
    """WSGI app: ``GET /healthz`` here, everything else to Bolt's ``SlackRequestHandler``
    (which serves ``POST /slack/events`` and answers 404 to the rest)."""

    def __init__(self, app: App, kb_provider: KnowledgeProvider, mode: str = "http") -> None:
        self.slack = SlackRequestHandler(app, path="/slack/events")
        self.kb_provider = kb_provider
        self.mode = mode

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in (
            "GET", "HEAD"
        ):
            body = json.dumps({
                "status": "ok",
                "entries": len(self.kb_provider()),
                "mode": self.mode,
            }).encode()
            start_response("200 OK", [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ])
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        return self.slack(environ, start_response)


class WorkerSetup:
    """Builds, in each process that serves, what must not cross a fork: the store's
    connections, the Bolt app with its thread pools, and the triage retry thread."""

    def __init__(self, settings: Settings, kb: KnowledgeBase, auth_test: SlackResponse | None,
                 *, lazy: bool = DEFAULT_LAZY) -> None:
        self.settings = settings
        self.kb = kb
        self.auth_test = auth_test
        self.lazy = lazy
        self.store: TicketStore | None = None
        self.triage: Triage | None = None

    def kb_provider(self) -> KnowledgeBase:
        return self.kb

    def build(self) -> App:
        settings = self.settings
        client = make_client(settings)
        self.store = open_store(settings.database_url)
        self.triage = Triage(client, self.store, settings.support_channel_id)
        app = build_app(settings, self.kb_provider, self.store, client, triage=self.triage,
                        auth_test=self.auth_test, lazy=self.lazy)
        self.triage.start()
        return app

    def wsgi(self) -> HealthzWrapper:
        return HealthzWrapper(self.build(), self.kb_provider)


class GunicornServer:
    """gunicorn started from Python; each worker calls ``load()`` after the fork for its app.

    Args:
        settings: ``host``, ``port`` and ``log_level`` are used.
        load: builds the WSGI app in each worker (threads and DB connections must not be
            created before the fork).
    """

    def __init__(self, settings: Settings, load: Callable[[], Any], *,
                 workers: int = DEFAULT_WORKERS, worker_class: str = DEFAULT_WORKER_CLASS,
                 threads: int = DEFAULT_THREADS) -> None:
        from gunicorn.app.base import BaseApplication

        host = settings.host
        bind = f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"
        options = {
            "bind": bind,
            "workers": workers,
            "worker_class": worker_class,
            "threads": threads,
            "timeout": 60,
            "graceful_timeout": 10,
            "keepalive": 5,
            "backlog": 512,
            "loglevel": settings.log_level.lower(),
            "accesslog": None,
            "errorlog": "-",
            "proc_name": "faqbot",
            "preload_app": False,
        }

        class _App(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in options.items():
                    self.cfg.set(key, value)

            def load(self) -> Any:
                return load()

        self._app = _App()

    def run(self) -> int:
        try:
            self._app.run()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return 0


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _identity(settings: Settings) -> SlackResponse:
    """``auth.test``: proves the token works and says who we are (logged, token never)."""
    response = make_client(settings).auth_test()
    log.info(
        "connected to Slack as @%s (user %s, bot %s) in %s (team %s)",
        response.get("user"), response.get("user_id"), response.get("bot_id"),
        response.get("team"), response.get("team_id"),
    )
    return response


def run(settings: Settings, *, lazy: bool = DEFAULT_LAZY, workers: int = DEFAULT_WORKERS,
        worker_class: str = DEFAULT_WORKER_CLASS, threads: int = DEFAULT_THREADS) -> int:
    """Start the Slack app; return the exit code.

    Raises:
        ConfigError: a required variable is missing (the message names each one).
        KnowledgeError: the knowledge file is invalid.
        StoreError: the ticket store cannot be opened.
    """
    settings.require_for_run()
    _configure_logging(settings.log_level)
    kb = load_knowledge(settings.knowledge_path)
    log.info("loaded %d knowledge entries from %s", len(kb), settings.knowledge_path)
    open_store(settings.database_url).close()  # fail fast; each worker opens its own
    try:
        auth_test = _identity(settings)
    except SlackApiError as exc:
        raise FaqbotError(
            f"Slack refused the bot token (auth.test: {exc.response.get('error')}). "
            "Check SLACK_BOT_TOKEN."
        ) from None
    except OSError as exc:
        raise FaqbotError(f"cannot reach the Slack Web API: {exc}") from None
    if not settings.support_channel_id:
        log.warning("SUPPORT_CHANNEL_ID is not set: tickets are stored but not posted")
    setup = WorkerSetup(settings, kb, auth_test, lazy=lazy)

    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        app = setup.build()
        log.info("starting in Socket Mode")
        handler = SocketModeHandler(app, settings.slack_app_token, web_client=app.client)
        try:
            handler.start()  # blocks until interrupted
        except KeyboardInterrupt:
            pass
        finally:
            if setup.triage is not None:
                setup.triage.stop()
        return 0

    log.info("serving HTTP on %s:%d (POST /slack/events, GET /healthz)",
             settings.host, settings.port)
    return GunicornServer(settings, setup.wsgi, workers=workers, worker_class=worker_class,
                          threads=threads).run()
