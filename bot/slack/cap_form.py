"""The cap-increase details modal: building it and validating what comes back.

*Add details* under a cap-increase ticket opens :func:`modal` with ``views.open``; the
``view_submission`` is checked by :func:`parse_submission`, whose errors go back to Slack as
``response_action: errors`` (shown under each field)::

    client.views_open(trigger_id=body["trigger_id"], view=modal(ticket))
    details, errors = parse_submission(body["view"]["state"]["values"])
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.slack import formatting as fmt
from bot.tickets import Ticket

__all__ = ["CALLBACK_ID", "modal", "parse_number", "parse_submission", "ticket_number"]

CALLBACK_ID = "faq_cap_details"

BLOCK_APP = "cap_app"
BLOCK_CURRENT = "cap_current_users"
BLOCK_WANTED = "cap_wanted"
BLOCK_LIVE = "cap_in_production"
ACTION = "value"  # every input's action_id

MAX_USERS = 10**12
_NUMBER_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([km]?)$")


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _input(block_id: str, label: str, placeholder: str, *, initial: str | None = None,
           max_length: int = 200) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input", "action_id": ACTION,
        "placeholder": _plain(placeholder), "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial
    return {"type": "input", "block_id": block_id, "label": _plain(label), "element": element}


def modal(ticket: Ticket) -> dict[str, Any]:
    """The modal for ``ticket`` (prefilled with any details already given)."""
    details = ticket.details
    yes_no = [
        {"text": _plain("Yes, it is live in production"), "value": "yes"},
        {"text": _plain("No, not yet"), "value": "no"},
    ]
    live: dict[str, Any] = {"type": "radio_buttons", "action_id": ACTION, "options": yes_no}
    for option in yes_no:
        if details.get("in_production") == option["value"]:
            live["initial_option"] = option
    question = fmt.escape(" ".join(ticket.question.split())[:500])
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps({"ticket": ticket.number}),
        "title": _plain("Cap increase details"),
        "submit": _plain("Send"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                f"*{ticket.id}*: &gt; {question}\nThese details let support review your "
                "request without asking you again. Note: an app must be live in production "
                "to request a cap increase.")}},
            _input(BLOCK_APP, "App name or client key", "e.g. My App, or aw1b2c3d4e5f",
                   initial=details.get("app")),
            _input(BLOCK_CURRENT, "Current active users", "e.g. 4800",
                   initial=details.get("current_users"), max_length=20),
            _input(BLOCK_WANTED, "Cap wanted", "e.g. 20000",
                   initial=details.get("cap_wanted"), max_length=20),
            {"type": "input", "block_id": BLOCK_LIVE,
             "label": _plain("Is the app live in production?"), "element": live},
        ],
    }


def ticket_number(view: dict[str, Any]) -> int | None:
    """The ticket the submitted modal is about (from its ``private_metadata``)."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
        number = data.get("ticket") if isinstance(data, dict) else None
    except ValueError:
        return None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def parse_number(text: str) -> int | None:
    """A user count as people type it: ``4800``, ``4,800``, ``4 800``, ``5k``, ``1.5M``.

    None unless it is a whole, positive number of users (below a trillion).
    """
    cleaned = re.sub(r"[,_\s]", "", text.strip()).lower()
    m = _NUMBER_RE.match(cleaned)
    if not m:
        return None
    number = float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2)]
    if number != int(number) or not 0 < number < MAX_USERS:
        return None
    return int(number)


def _value(values: dict[str, Any], block_id: str) -> str:
    state = (values.get(block_id) or {}).get(ACTION) or {}
    if state.get("type") == "radio_buttons":
        return str((state.get("selected_option") or {}).get("value") or "")
    return str(state.get("value") or "").strip()


def parse_submission(values: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """``view.state.values`` → ``(details, errors)``; ``errors`` maps block ids to messages."""
    errors: dict[str, str] = {}
    details: dict[str, str] = {}
    app = _value(values, BLOCK_APP)
    if not app:
        errors[BLOCK_APP] = "Enter the app's name or its client key."
    else:
        details["app"] = app
    for block_id, key, label in ((BLOCK_CURRENT, "current_users", "current active users"),
                                 (BLOCK_WANTED, "cap_wanted", "cap you need")):
        raw = _value(values, block_id)
        number = parse_number(raw)
        if number is None:
            errors[block_id] = (f"Enter the {label} as a whole number, e.g. 20000 or 20k."
                                if raw else f"Enter the {label}.")
        else:
            details[key] = str(number)
    live = _value(values, BLOCK_LIVE)
    if live not in ("yes", "no"):
        errors[BLOCK_LIVE] = "Say whether the app is live in production."
    else:
        details["in_production"] = live
    if not errors and int(details["cap_wanted"]) <= int(details["current_users"]):
        errors[BLOCK_WANTED] = "The cap you need should be more than your current active users."
    return (details, {}) if not errors else ({}, errors)
