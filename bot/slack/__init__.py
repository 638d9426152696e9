"""faqbot's Slack front end: Bolt app, listeners, pure payload helpers, triage, server.

Only this package imports ``slack_bolt``/``slack_sdk``; the core never does.
"""

__all__ = ["app", "events", "formatting", "listeners", "server", "triage"]
