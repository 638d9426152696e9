"""Settings: faqbot's configuration, read from the environment and ``.env``.

Everything that is configured receives a :class:`Settings`. A variable set in the real
environment wins over the same one in ``.env``. Outside it, only process-level knobs are read
where they act: ``FAQBOT_KNOWLEDGE_CACHE`` and ``XDG_CACHE_HOME`` (:mod:`bot.kbcache`),
``GLIBC_TUNABLES`` (:mod:`bot.slack.server`, at start); ``bot/__init__.py`` sets
``OPENBLAS_NUM_THREADS``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.errors import ConfigError

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_KNOWLEDGE_PATH", "Settings", "load_environ"]

DEFAULT_KNOWLEDGE_PATH = "knowledge/faq.yaml"
DEFAULT_DATABASE_URL = "sqlite:///faqbot.sqlite3"


def load_environ(environ: Mapping[str, str] | None = None, env_file: str | Path = ".env") -> dict:
    """The process environment laid over the values of ``env_file`` (when it exists)."""
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    path = Path(env_file)
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _csv(value: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything faqbot can be configured with; see ``.env.example`` for each variable."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str | None = None
    support_channel_id: str | None = None
    support_user_ids: frozenset[str] = frozenset()
    faq_channels: frozenset[str] = frozenset()
    knowledge_path: str = DEFAULT_KNOWLEDGE_PATH
    database_url: str = DEFAULT_DATABASE_URL
    port: int = 3000
    host: str = "0.0.0.0"
    log_level: str = "INFO"
    question_retention_days: int = 365
    reload_interval: float = 2.0
    slack_api_timeout: float = 15.0  # seconds one Web API call may take
    semantic: str = "auto"  # the optional semantic model: auto (if installed), off, or its folder

    def __repr__(self) -> str:  # never print secrets, even in a traceback
        return (
            f"Settings(knowledge_path={self.knowledge_path!r}, database_url=<set>, "
            f"port={self.port}, host={self.host!r}, socket_mode={self.socket_mode})"
        )

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path = ".env"):
        """Build settings from ``environ`` (default: ``os.environ``) over ``env_file``."""
        env = load_environ(environ, env_file)

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: int, cast=int):
            raw = text(name)
            if raw is None:
                return default
            try:
                return cast(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None

        return cls(
            slack_bot_token=text("SLACK_BOT_TOKEN"),
            slack_signing_secret=text("SLACK_SIGNING_SECRET"),
            slack_app_token=text("SLACK_APP_TOKEN"),
            slack_api_url=text("SLACK_API_URL"),
            support_channel_id=text("SUPPORT_CHANNEL_ID"),
            support_user_ids=_csv(env.get("SUPPORT_USER_IDS")),
            faq_channels=_csv(env.get("FAQ_CHANNELS")),
            knowledge_path=text("KNOWLEDGE_PATH") or DEFAULT_KNOWLEDGE_PATH,
            database_url=text("DATABASE_URL") or DEFAULT_DATABASE_URL,
            port=number("PORT", 3000),
            host=text("HOST") or "0.0.0.0",
            log_level=(text("LOG_LEVEL") or "INFO").upper(),
            question_retention_days=number("QUESTION_RETENTION_DAYS", 365),
            reload_interval=number("KNOWLEDGE_RELOAD_INTERVAL", 2.0, float),
            slack_api_timeout=number("SLACK_API_TIMEOUT", 15.0, float),
            semantic=text("FAQBOT_SEMANTIC") or "auto",
        )

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    def require_for_run(self) -> None:
        """Fail fast, naming every variable ``faqbot run`` still needs."""
        missing = []
        if not self.slack_bot_token:
            missing.append("SLACK_BOT_TOKEN (the bot token, xoxb-…)")
        if not self.socket_mode and not self.slack_signing_secret:
            missing.append(
                "SLACK_SIGNING_SECRET (HTTP mode; or set SLACK_APP_TOKEN for Socket Mode)"
            )
        if missing:
            raise ConfigError(
                "faqbot run needs " + "; ".join(missing)
                + ". Set them in the environment or in .env (see .env.example)."
            )
