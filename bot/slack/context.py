"""What every Slack listener needs, in one object: :class:`Faqbot` (settings, the current
knowledge, the ticket store, triage, the background pool). Built by
:func:`bot.slack.app.build_app` and handed to :func:`bot.slack.listeners.register`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.config import Settings
from bot.knowledge import KnowledgeBase
from bot.slack.triage import Triage
from bot.tickets import TicketStore

__all__ = ["Faqbot", "KnowledgeProvider"]

#: Returns the current knowledge on every call (live reload swaps it).
KnowledgeProvider = Callable[[], KnowledgeBase]


@dataclass
class Faqbot:
    """What every listener needs: settings, the current knowledge, the store, triage."""

    settings: Settings
    kb_provider: KnowledgeProvider
    store: TicketStore
    triage: Triage
    background: ThreadPoolExecutor  # follow-ups the ack does not wait for (not Bolt's pool)

    @property
    def kb(self) -> KnowledgeBase:
        return self.kb_provider()
