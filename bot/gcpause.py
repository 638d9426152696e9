"""Keeping Python's cyclic garbage collector off work and objects it cannot help with.

- Around work that allocates many small objects and makes no cycles (composing YAML,
  unpickling an index, grouping questions): its passes over them, and over everything else
  alive, only slow that work down (:func:`collector_paused`).
- Over what a server keeps for its whole life (the knowledge, the model, the Slack app): a
  full collection walks every object alive while holding the GIL, 30 ms in a loaded worker
  at rest and 44-167 ms under load, and every request in the process waits
  (:func:`freeze_long_lived`; docs/operations.md).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused", "freeze_long_lived"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off inside the block, and afterwards as it was before (left off when it
    was off already)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_long_lived() -> int:
    """Collect what is garbage now, then move every object still alive out of the collector's
    reach (``gc.freeze``): later collections walk only objects made after this call. Objects
    it moved are still freed when nothing refers to them; only a cycle among them would stay,
    which is why the collection comes first. Called before gunicorn forks (the workers share
    those objects' pages, which the collector would otherwise write to) and after a worker,
    or a reload, has built what it keeps. Returns how many objects are frozen in all."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
