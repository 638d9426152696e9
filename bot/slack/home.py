"""The App Home tab: a user's own tickets; for support staff, the open queue too.

Published with ``views.publish`` when the user opens the tab (``app_home_opened``, tab
``home``) and again after they take a ticket from it::

    home = Home(client, store, is_staff)
    home.publish("U123")
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient

from bot.errors import StoreError
from bot.slack import staff_blocks as sb
from bot.tickets import Ticket, TicketStore

__all__ = ["Home", "is_home_opened", "queue"]

log = logging.getLogger(__name__)

QUEUE_LIMIT = 200


def is_home_opened(event: Mapping[str, Any]) -> bool:
    """``app_home_opened`` on the Home tab (not the Messages tab) with a user."""
    return (event.get("type") == "app_home_opened" and event.get("tab", "home") == "home"
            and bool(event.get("user")))


def queue(store: TicketStore, limit: int = QUEUE_LIMIT) -> list[Ticket]:
    """Open and in-progress tickets, oldest first."""
    found = store.list(status="open", limit=limit) + store.list(status="in_progress", limit=limit)
    return sorted(found, key=lambda t: (t.created_at, t.number))


class Home:
    """Builds and publishes a user's App Home.

    Args:
        client: the Web API client.
        store: the ticket store.
        is_staff: whether a user id belongs to support staff.
    """

    def __init__(self, client: WebClient, store: TicketStore, is_staff: Callable[[str], bool]
                 ) -> None:
        self.client = client
        self.store = store
        self.is_staff = is_staff

    def view(self, user: str) -> dict[str, Any]:
        own = self.store.list(requester=user, limit=sb.MAX_HOME_TICKETS)
        staff_queue = queue(self.store) if self.is_staff(user) else None
        return sb.home_view(own, staff_queue)

    def publish(self, user: str) -> bool:
        """Publish ``user``'s Home; False (and a logged error) when it could not be."""
        try:
            view = self.view(user)
        except StoreError:
            log.exception("could not read tickets for %s's App Home", user)
            return False
        try:
            self.client.views_publish(user_id=user, view=view)
        except Exception:
            log.exception("could not publish the App Home for %s", user)
            return False
        return True
