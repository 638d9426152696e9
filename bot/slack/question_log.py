"""What askers tell the question log with buttons, recorded by a middleware in the background
before the buttons' own listeners run: *Solved* / *Not helpful* on an answer, and *None of
these* under "Did you mean…" (the logged question's feedback), and the entry picked from "Did
you mean…" (its ``picked``, which ``faqbot kb gaps`` offers as that entry's phrasings)::

    app.middleware(RequestMiddleware(ButtonRecorder(bot)))
"""

from __future__ import annotations

import logging

from slack_bolt import BoltRequest

from bot.errors import StoreError
from bot.slack import formatting as fmt
from bot.slack.context import Faqbot

__all__ = ["FEEDBACK", "ButtonRecorder"]

log = logging.getLogger(__name__)

# *None of these* under "Did you mean…" says the reply did not help, as *Not helpful* does
FEEDBACK = {fmt.ACTION_SOLVED: "helpful", fmt.ACTION_NOT_HELPFUL: "not_helpful",
            fmt.ACTION_NONE: "not_helpful"}


class ButtonRecorder:
    """Reads each ``block_actions`` request for the buttons the question log records; the
    logged question's id rides in the button's value (``Ref.qid``)."""

    def __init__(self, bot: Faqbot) -> None:
        self.bot = bot

    def __call__(self, request: BoltRequest) -> None:
        body = request.body
        if body.get("type") != "block_actions":
            return
        for action in body.get("actions") or ():
            action_id = str(action.get("action_id"))
            ref = fmt.Ref.decode(action.get("value"))
            if not (ref.qid and ref.qid.isdigit()):
                continue
            if action_id in FEEDBACK:
                self.bot.background.submit(self._record, "feedback", int(ref.qid),
                                           FEEDBACK[action_id])
            elif action_id.startswith(fmt.ACTION_PICK + "_") and ref.entry:
                self.bot.background.submit(self._record, "picked", int(ref.qid), ref.entry)

    def _record(self, what: str, qid: int, value: str) -> None:
        """``store.set_feedback`` or ``store.set_picked`` (``what``), logged if it fails."""
        try:
            getattr(self.bot.store, f"set_{what}")(qid, value)
        except (StoreError, LookupError):
            log.exception("could not record the %s on question %s", what, qid)
