"""What every Slack listener needs, in one object: :class:`Faqbot` (settings, the current
knowledge, the ticket store, triage, the background pool). Built by
:func:`bot.slack.app.build_app` and handed to :func:`bot.slack.listeners.register`. Also
:class:`RequestMiddleware`, the cheap form of a Bolt middleware."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.config import Settings
from bot.matching import Matcher
from bot.slack.triage import Triage
from bot.tickets import TicketStore

__all__ = ["Faqbot", "KnowledgeProvider", "RequestMiddleware"]

#: Returns the current knowledge on every call (live reload swaps it).
KnowledgeProvider = Callable[[], Matcher]


@dataclass
class Faqbot:
    """What every listener needs: settings, the current knowledge, the store, triage."""

    settings: Settings
    kb_provider: KnowledgeProvider
    store: TicketStore
    triage: Triage
    background: ThreadPoolExecutor  # follow-ups the ack does not wait for (not Bolt's pool)

    @property
    def kb(self) -> Matcher:
        return self.kb_provider()


class RequestMiddleware(Middleware):
    """A global Bolt middleware that runs ``look(request)``, then the rest of the chain.

    ``app.middleware(function)`` would call the function through Bolt's argument injection,
    which builds every argument a listener could ask for (the event, the action, the view…)
    on each call: about as much work as the rest of an event's dispatch. This calls it
    directly, for every request::

        app.middleware(RequestMiddleware(lambda request: ...))
    """

    def __init__(self, look: Callable[[BoltRequest], None]) -> None:
        self.look = look

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002 - Bolt's name
        self.look(req)
        next()
        return resp

    @property
    def name(self) -> str:
        return getattr(self.look, "__qualname__", type(self).__name__)
