"""The cyclic garbage collector kept off a server's long-lived objects (bot.gcpause): what a
worker builds, and the knowledge a reload brings, are frozen; garbage is collected first, and
knowledge replaced by a reload is still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.gcpause import freeze_long_lived
from bot.knowledge import load_knowledge
from tests import slack_helpers as h
from tests.fake_slack import FakeSlack


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _tracked(obj: object) -> bool:
    """Whether the collector's generations hold ``obj`` (frozen objects are outside them)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture(autouse=True)
def _thaw() -> Iterator[None]:
    """Give the test process its collector back as it was."""
    yield
    gc.unfreeze()


def test_live_objects_are_frozen_and_garbage_collected_first() -> None:
    kept = _Node()
    cycle = _Node()
    cycle.other = _Node()
    cycle.other.other = cycle  # garbage only the collector can free
    gone = weakref.ref(cycle)
    del cycle
    assert _tracked(kept) and gone() is not None

    frozen = freeze_long_lived()

    assert gone() is None  # collected, not frozen for the life of the process
    assert not _tracked(kept)
    assert frozen == gc.get_freeze_count() > 0
    later = _Node()  # made after the freeze: the collector walks it as usual
    assert _tracked(later)


def test_frozen_objects_are_still_freed_when_unreferenced() -> None:
    node = _Node()
    freeze_long_lived()
    gone = weakref.ref(node)
    del node
    assert gone() is None


@pytest.fixture
def worker(tmp_path: Path) -> Iterator:
    from bot.slack.server import WorkerSetup

    with FakeSlack() as fake:
        env = h.server_env(fake.api_url, tmp_path)
        settings = Settings.from_env(env, env_file=tmp_path / "none.env")
        kb = load_knowledge(settings.knowledge_path)
        setup = WorkerSetup(settings, kb, None)
        try:
            yield setup
        finally:
            setup.close()


def _edit(setup, old: str, new: str):
    """Change the knowledge file and reload it; the knowledge now in service."""
    path = Path(setup.settings.knowledge_path)
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    result = setup.holder.check(force=True)
    assert result.status == "reloaded", result.summary
    return setup.holder.current


def test_a_worker_freezes_what_it_builds_and_each_reloaded_knowledge(worker) -> None:
    """The Bolt app and the knowledge in service are frozen once the worker is built; a
    reload's knowledge is frozen too, and knowledge a later reload replaces is freed."""
    app = worker.build()
    assert not _tracked(app) and not _tracked(worker.holder.current)

    reloaded = _edit(worker, "How long does the app review process take?",
                     "How long does the app review take?")
    assert reloaded.entries[0].question == "How long does the app review take?"
    assert not _tracked(reloaded)

    replaced = weakref.ref(reloaded)
    del reloaded
    current = _edit(worker, "How long does the app review take?", "How long is app review?")
    assert not _tracked(current)
    assert replaced() is None
