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
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.config import Settings
from bot.errors import FaqbotError, StoreError
from bot.gcpause import freeze_long_lived
from bot.matching import Matcher
from bot.reload import KnowledgeHolder, ReloadResult
from bot.slack.app import BACKGROUND_THREADS, KnowledgeProvider, build_app, make_client
from bot.slack.formatting import escape
from bot.slack.guard import RequestGuard
from bot.slack.staff_blocks import triage_builder
from bot.slack.triage import Triage
from bot.tickets import TicketStore, open_store
from bot.tickets.host import StoreHost, hostable, start_store_host

__all__ = ["GunicornServer", "HealthzWrapper", "WorkerSetup", "run"]

#: Days a processed delivery's key is kept for deduplication (Slack retries within the hour).
DELIVERY_KEYS_KEPT_DAYS = 7

log = logging.getLogger("faqbot")

#: Chosen by measurement (bench/bench_slack.py): gthread workers with several threads each,
#: and Bolt's default listener mode (ack first, answer on a thread pool).
DEFAULT_WORKERS = 2
DEFAULT_WORKER_CLASS = "gthread"
DEFAULT_THREADS = 8
#: glibc malloc settings for the HTTP server's processes (``GLIBC_TUNABLES``, read only when
#: a process starts, so ``run`` re-executes itself once with them). Measured with
#: bench/bench_soak.py (15,000 requests): by default each of a worker's ~64 threads keeps a
#: cache of freed blocks (tcache, up to 7 blocks of each size up to 1 KB, which Python's
#: larger objects use), filled slowly as threads take turns, and threads spread over up to
#: 8 arenas per CPU that fragment: the servers' RSS grew 211 → 246 MB (+16%) after the
#: first 1,000 requests. Without the per-thread caches and with 2 arenas: 204 → 214 MB
#: (+5%, most of it by 3,000 requests), at the same latency. An operator's own
#: ``GLIBC_TUNABLES`` (even empty) is used as it is.
MALLOC_TUNABLES = "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2"

StartResponse = Callable[..., Any]


class HealthzWrapper:
    """WSGI app: ``GET /healthz`` here, everything else to Bolt's ``SlackRequestHandler``
    (which serves ``POST /slack/events`` and answers 404 to the rest)."""

    def __init__(self, app: App, kb_provider: KnowledgeProvider, mode: str = "http") -> None:
        # The guard answers 401/413/400 itself: Bolt parses before it verifies, and raises.
        self.slack = RequestGuard(SlackRequestHandler(app, path="/slack/events"),
                                  app._signing_secret)  # noqa: SLF001 - no public getter
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

    def __init__(self, settings: Settings, kb: Matcher, auth_test: SlackResponse | None,
                 *, kb_digest: str | None = None, store_host: StoreHost | None = None) -> None:
        self.settings = settings
        self.store_host = store_host  # the workers' SQLite file is written by its process
        self.kb = kb
        self.kb_digest = kb_digest  # of the file bytes ``kb`` was loaded from
        self.auth_test = auth_test
        self.store: TicketStore | None = None
        self.triage: Triage | None = None
        self.holder: KnowledgeHolder | None = None
        self.background: ThreadPoolExecutor | None = None
        self.client: WebClient | None = None

    def kb_provider(self) -> Matcher:
        return self.holder.current if self.holder is not None else self.kb

    def build(self) -> App:
        settings = self.settings
        client = self.client = make_client(settings)
        self.store = (self.store_host.client() if self.store_host is not None
                      else open_store(settings.database_url))
        self._forget_old_deliveries()
        self.triage = Triage(client, self.store, settings.support_channel_id,
                             message_builder=triage_builder(self.kb_provider))
        # Live reload: every worker polls the file; a broken version keeps the last good
        # knowledge in service and is announced once (see notify_broken_knowledge).
        self.holder = KnowledgeHolder(
            settings.knowledge_path, kb=self.kb, digest=self.kb_digest,
            interval=settings.reload_interval, semantic=settings.semantic,
            on_error=self.notify_broken_knowledge,
            on_reload=self._reloaded,
        )
        self.background = ThreadPoolExecutor(BACKGROUND_THREADS,
                                             thread_name_prefix="faqbot-background")
        app = build_app(settings, self.holder, self.store, client, triage=self.triage,
                        auth_test=self.auth_test, background=self.background)
        self.triage.start()
        self.holder.start()
        # Every thread now rather than as load first needs them (bench/bench_soak.py: 44 of
        # the 128 threads were started between the 1,000th and the 2,000th request).
        start_threads(self.background)
        start_threads(app.listener_runner.listener_executor)
        freeze_long_lived()  # the app, its clients and pools live as long as the worker
        return app

    def _reloaded(self, result: ReloadResult) -> None:
        log.info("%s", result.summary)
        freeze_long_lived()  # the new knowledge; the old one is freed as it was

    def _forget_old_deliveries(self) -> None:
        """Delivery keys only matter while Slack may retry (within the hour): keep a week."""
        assert self.store is not None
        try:
            cutoff = datetime.now(UTC) - timedelta(days=DELIVERY_KEYS_KEPT_DAYS)
            deleted = self.store.purge_events(cutoff)
        except StoreError:
            log.exception("could not purge old delivery keys; will try at the next start")
            return
        if deleted:
            log.info("forgot %d delivery keys older than %d days", deleted,
                     DELIVERY_KEYS_KEPT_DAYS)

    def notify_broken_knowledge(self, result: ReloadResult) -> None:
        """Post one notice per broken version to the triage channel, whichever worker (or
        process) sees it first: the store's durable claim makes it exactly one."""
        for problem in result.problems[:20]:
            log.error("%s", problem)
        channel = self.settings.support_channel_id
        if not channel or self.client is None or self.store is None:
            return
        try:
            if not self.store.claim_event(f"knowledge-broken:{result.digest}"):
                return
            lines = "\n".join(escape(str(p)) for p in result.problems[:10])
            more = len(result.problems) - 10
            text = (f":warning: The knowledge file has {len(result.problems)} problem(s); "
                    f"the previous version stays in service.\n```{lines}```"
                    + (f"\n…and {more} more (`faqbot kb check`)." if more > 0 else ""))
            self.client.chat_postMessage(channel=channel, text=text)
        except Exception:  # a notice must never take the worker down
            log.exception("could not announce the broken knowledge file")

    def wsgi(self) -> HealthzWrapper:
        return HealthzWrapper(self.build(), self.kb_provider)

    def close(self) -> None:
        """At worker exit: let the triage thread finish the post it is making (it is a daemon
        thread, so the exit would otherwise cut it off holding the ticket's posting lease)."""
        if self.holder is not None:
            self.holder.stop()
        if self.background is not None:
            # Answers and tickets handed over after their ack: finish them before exiting.
            self.background.shutdown(wait=True)
        if self.triage is not None:
            self.triage.stop()


def start_threads(pool: Executor | None, timeout: float = 10.0) -> None:
    """Have ``pool`` (a ThreadPoolExecutor, which starts a thread per task submitted while
    none is idle, up to its size) start all its threads now: as many tasks as it has
    threads, waiting for each other. Anything else is left alone."""
    if not isinstance(pool, ThreadPoolExecutor):
        return
    count = pool._max_workers  # noqa: SLF001 - the pool's size; no public accessor
    if count < 1:
        return
    barrier = threading.Barrier(count + 1)

    def wait() -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass

    for _ in range(count):
        pool.submit(wait)
    wait()


class GunicornServer:
    """gunicorn started from Python; each worker calls ``load()`` after the fork for its app.

    Args:
        settings: ``host``, ``port`` and ``log_level`` are used.
        load: builds the WSGI app in each worker (threads and DB connections must not be
            created before the fork).
        on_worker_exit: called in each worker as it exits (gunicorn's ``worker_exit``).
    """

    def __init__(self, settings: Settings, load: Callable[[], Any], *,
                 workers: int = DEFAULT_WORKERS, worker_class: str = DEFAULT_WORKER_CLASS,
                 threads: int = DEFAULT_THREADS,
                 on_worker_exit: Callable[[], None] | None = None) -> None:
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
        # gthread's request threads too, like the app's pools (WorkerSetup.build).
        options["post_worker_init"] = lambda worker: start_threads(getattr(worker, "tpool", None))
        if on_worker_exit is not None:
            options["worker_exit"] = lambda _arbiter, _worker: on_worker_exit()

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


def _reexec_with_malloc_tunables() -> None:
    """Run this process again with :data:`MALLOC_TUNABLES` (glibc only; once: the variable
    is set the second time). Same PID, arguments and environment otherwise."""
    if "GLIBC_TUNABLES" in os.environ or not _glibc() or sys.argv[0] in ("", "-"):
        return  # (a program read from stdin could not be read again)
    os.environ["GLIBC_TUNABLES"] = MALLOC_TUNABLES
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return False


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # bot.cli.main already configured WARNING; LOG_LEVEL must win
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


def run(settings: Settings, *, workers: int = DEFAULT_WORKERS,
        worker_class: str = DEFAULT_WORKER_CLASS, threads: int = DEFAULT_THREADS) -> int:
    """Start the Slack app; return the exit code.

    Raises:
        ConfigError: a required variable is missing (the message names each one).
        KnowledgeError: the knowledge file is invalid.
        StoreError: the ticket store cannot be opened.
    """
    settings.require_for_run()
    if not settings.socket_mode:
        _reexec_with_malloc_tunables()
    _configure_logging(settings.log_level)
    # raises KnowledgeError when broken; loads the semantic model (once, before the fork)
    loaded = KnowledgeHolder(settings.knowledge_path, semantic=settings.semantic)
    kb = loaded.current
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
    # Workers start with this knowledge; one forked (or restarted) after an edit sees that the
    # file's digest differs and loads the file as it is then.
    setup = WorkerSetup(settings, kb, auth_test, kb_digest=loaded.digest)

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
            setup.close()
        return 0

    # The knowledge and the model, before the store process and the workers fork: the
    # collector then never writes to the pages they share with this process.
    freeze_long_lived()
    if workers > 1 and hostable(settings.database_url):
        # Several workers share the SQLite file: one process writes it for all of them.
        setup.store_host = start_store_host(settings.database_url)
    log.info("serving HTTP on %s:%d (POST /slack/events, GET /healthz)",
             settings.host, settings.port)
    try:
        return GunicornServer(settings, setup.wsgi, workers=workers, worker_class=worker_class,
                              threads=threads, on_worker_exit=setup.close).run()
    finally:
        if setup.store_host is not None:
            setup.store_host.stop()
