"""Shared fixtures: a clean environment for every test, small knowledge bases, paths."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.knowledge import KnowledgeBase, load_knowledge, parse_knowledge

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_KNOWLEDGE = ROOT / "knowledge" / "faq.yaml"

# Variables faqbot reads (every name config.py looks up); none may leak from the developer's
# shell or .env into a test.
_FAQBOT_VARS = tuple(sorted(set(re.findall(
    r'(?:text|number|env\.get)\("([A-Z][A-Z_]+)"',
    (ROOT / "bot" / "config.py").read_text(encoding="utf-8"),
))))

SMALL_KB = """\
version: 1
title: Test FAQ
support: "Ask in #help."
thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}
synonyms:
  - [rejected, declined, denied]
  - [react native, rn]
handoff:
  - talk to a human
entries:
  - id: review-time
    question: How long does the app review process take?
    phrasings: [review eta, how long is the review, when will approval come]
    answer: App review may take several days to two weeks after submission.
    tags: [review]
  - id: not-approved
    question: Why was my app not approved?
    phrasings: [app rejected, why was my app declined]
    answer: Apps are not approved for various reasons.
    tags: [review]
  - id: react-native
    question: Is TikTok for Developers compatible with apps built in React Native?
    phrasings: [does login kit work with react native]
    answer: Yes. Login Kit will work with web and React Native builds for Android and iOS apps.
    tags: [platforms]
  - id: cap
    question: Can I increase my active user cap?
    phrasings: [raise the user limit, need more users allowed]
    answer: Please contact us via our Support form to request an increase in your active user cap.
    tags: [limits]
    ticket: cap_increase
"""


@pytest.fixture(scope="session", autouse=True)
def knowledge_cache_home(tmp_path_factory: pytest.TempPathFactory):
    """The compiled-knowledge cache (bot/kbcache.py) of this session's tests, subprocesses
    included, is a temporary folder: tests never write to the real home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Every test starts without faqbot's variables and outside the repo (no stray .env)."""
    for name in _FAQBOT_VARS:
        monkeypatch.delenv(name, raising=False)
    # The lexical matcher alone, as the figures these tests check were measured with; the tests
    # of the optional semantic model turn it on (FAQBOT_SEMANTIC=auto).
    monkeypatch.setenv("FAQBOT_SEMANTIC", "off")
    yield


@pytest.fixture
def small_kb() -> KnowledgeBase:
    return parse_knowledge(SMALL_KB, "small.yaml")


@pytest.fixture
def small_kb_path(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_KB, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def bundled_kb() -> KnowledgeBase:
    return load_knowledge(BUNDLED_KNOWLEDGE)


def cli_env(**extra: str) -> dict[str, str]:
    """An environment for running ``python -m bot`` in a subprocess, without faqbot variables."""
    env = {k: v for k, v in os.environ.items() if k not in _FAQBOT_VARS}
    env["FAQBOT_SEMANTIC"] = "off"  # as clean_environ
    env.update(extra)
    return env
