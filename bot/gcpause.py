"""Pausing Python's cyclic garbage collector around work that allocates many small objects
and makes no cycles (composing YAML, unpickling an index, grouping questions): its passes
over them, and over everything else alive, only slow that work down."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


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
