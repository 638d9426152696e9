"""Live reload of the knowledge file: edit ``knowledge/faq.yaml`` and the bot answers from it.

Usage::

    holder = KnowledgeHolder("knowledge/faq.yaml", on_error=notify_maintainers, interval=2.0)
    holder.start()                       # a daemon thread checks the file every 2 seconds
    decide(question, holder.current)     # read .current once per question
    result = holder.reload()             # /faq reload: check now, report what happened
    holder.stop()

How a check works:

1. ``stat`` the file. Same inode, size and modification time as the version in service, and
   that time well before we read the file: nothing to do (no read at all).
2. Otherwise read it and hash it (BLAKE2b). The same bytes as the version in service: nothing to
   do (an editor's no-op save, a ``touch``).
3. A file modified a moment ago may still be being written (an editor writing in place
   truncates first): wait ``settle`` seconds and read again, until two reads agree.
4. Parse and validate. Valid: swap it in, in one attribute assignment, so a question is answered
   by the old or the new knowledge, never by a mix. Invalid: read it again after ``confirm``
   seconds (a writer may have been interrupted between truncating and writing); the same bytes
   again make it a broken version: keep serving the last good version, log each
   ``PATH:LINE: message`` and call ``on_error`` — once per broken version (by content hash),
   however many checks see it.

Write the file atomically when you can (write a temporary file, then rename it over); in-place
writes are handled by step 3.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.errors import KnowledgeError, Problem
from bot.knowledge import MAX_KNOWLEDGE_BYTES, parse_knowledge_bytes
from bot.matching import Matcher
from bot.semantic import with_model

__all__ = ["KnowledgeHolder", "ReloadResult"]

logger = logging.getLogger("faqbot.reload")

Status = Literal["unchanged", "reloaded", "failed"]

# A file modified less than this long before we read it may have been read mid-write, or
# rewritten within the same timestamp tick: its stat alone does not prove it unchanged.
_RACY_NS = 1_000_000_000
_SETTLE_READS = 5  # at most this many extra reads while a file keeps changing
_CONFIRM_READS = 3  # a broken file is read again up to this many times before it is reported
_UNREADABLE = "<unreadable>"  # the failure key of a file that cannot be read


@dataclass(frozen=True)
class ReloadResult:
    """What one check found.

    Attributes:
        status: ``unchanged`` (nothing new), ``reloaded`` (new knowledge in service) or
            ``failed`` (the file is broken; the previous knowledge is still in service).
        kb: the knowledge in service after the check.
        path: the knowledge file.
        problems: for ``failed``, everything wrong with the file (``PATH:LINE: message``).
        digest: BLAKE2b of the bytes checked (None when the file could not be read).
        first_report: ``failed`` and this check is the first to see that broken version
            (``on_error`` was called).
    """

    status: Status
    kb: Matcher
    path: str
    problems: tuple[Problem, ...] = ()
    digest: str | None = None
    first_report: bool = False

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def summary(self) -> str:
        """One line for ``/faq reload`` and the logs."""
        entries = f"{len(self.kb)} entries"
        if self.status == "reloaded":
            return f"Reloaded {self.path}: {entries}."
        if self.status == "unchanged":
            return f"{self.path} has not changed; serving {entries}."
        n = len(self.problems)
        return (
            f"{self.path} has {n} problem{'s' if n != 1 else ''}; still serving the previous "
            f"version ({entries})."
        )


Callback = Callable[[ReloadResult], object]


@dataclass(frozen=True)
class _Seen:
    """The identity of a file version: what ``stat`` says and what its bytes hash to."""

    inode: int
    size: int
    mtime_ns: int
    read_ns: int  # wall clock when we read it (to spot racy timestamps)
    digest: str | None  # None: the file could not be read

    @property
    def key(self) -> str:
        return self.digest or _UNREADABLE


class KnowledgeHolder:
    """The knowledge in service, reloaded when its file changes; thread-safe.

    Args:
        path: the knowledge YAML.
        on_error: called with the :class:`ReloadResult` once per broken version of the file.
        on_reload: called with the result after each successful reload.
        interval: seconds between checks of the polling thread (:meth:`start`).
        kb: knowledge already loaded from ``path`` (default: load it now; a broken file raises
            :class:`~bot.errors.KnowledgeError`, since there is nothing to serve yet).
        digest: with ``kb``, the :attr:`digest` of the bytes it was loaded from. When the file
            no longer has those bytes (or ``digest`` is None) it is checked at once, so knowledge
            handed to a process started after an edit is never served as if it were current.
        settle: seconds to wait before re-reading a file that was modified a moment ago.
        confirm: seconds to wait before reading a broken file again, to tell a write in
            progress from a broken version (only broken versions are reported).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        on_error: Callback | None = None,
        on_reload: Callback | None = None,
        interval: float = 2.0,
        kb: Matcher | None = None,
        digest: str | None = None,
        settle: float = 0.05,
        confirm: float = 0.2,
        semantic: str = "off",
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.path = str(path)
        self.semantic = semantic  # FAQBOT_SEMANTIC: the optional model each version gets
        self.interval = interval
        self.settle = settle
        self.confirm = confirm
        self._on_error = on_error
        self._on_reload = on_reload
        self._lock = threading.Lock()  # one check at a time (poll thread vs /faq reload)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[str, tuple[Problem, ...]] = {}  # digest -> problems, reported once
        self._last_failure: ReloadResult | None = None
        self.checks = 0
        seen, data = self._read()
        if kb is None:
            if data is None:
                raise KnowledgeError.single(self.path, 0, "cannot read the file")
            kb, digest = self._parse(data), seen.digest
        self._current = kb
        self._digest = digest  # of the version in service (None: not known)
        self._seen = seen  # the version last read (in service, or broken)
        if digest != seen.digest:
            # The file changed after ``kb`` was loaded from it (a worker forked, or restarted,
            # after an edit): serve the file as it is now, or report it if it is broken.
            self._check(force=True)

    # ------------------------------------------------------------------ serving

    @property
    def current(self) -> Matcher:
        """The knowledge in service (read it once per question)."""
        return self._current

    def __call__(self) -> Matcher:
        """The holder is a knowledge provider: ``holder()`` is ``holder.current``."""
        return self._current

    @property
    def digest(self) -> str | None:
        """BLAKE2b of the file version in service (None when not known)."""
        return self._digest

    @property
    def last_failure(self) -> ReloadResult | None:
        """The failure the file is in now, or None when the file in service is the file on disk."""
        return self._last_failure

    # ------------------------------------------------------------------ checking

    def check(self, *, force: bool = False) -> ReloadResult:
        """Look at the file once and reload it when it changed (see the module docstring).

        Args:
            force: read and hash the file even when ``stat`` says it is unchanged.
        """
        with self._lock:
            self.checks += 1
            return self._check(force)

    def reload(self) -> ReloadResult:
        """Check now, whatever ``stat`` says (``/faq reload``)."""
        return self.check(force=True)

    def start(self) -> None:
        """Check every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, name="faqbot-knowledge-reload", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the polling thread (returns once it has ended, or after ``timeout``)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> KnowledgeHolder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the thread must survive anything one check does
                logger.exception("checking %s failed", self.path)

    def _check(self, force: bool) -> ReloadResult:
        seen = self._seen
        if not force and self._stat_unchanged(seen):
            return self._as_before(seen.key)
        new_seen, data = self._read_settled()
        for attempt in range(_CONFIRM_READS + 1):
            if new_seen.key == self._digest:
                self._seen = new_seen
                self._last_failure = None
                return ReloadResult("unchanged", self._current, self.path, digest=self._digest)
            if new_seen.key in self._failed:
                self._seen = new_seen
                return self._as_before(new_seen.key)
            try:
                kb = self._parse(data)
            except KnowledgeError as exc:
                problems = tuple(exc.problems)
            else:
                return self._swap(kb, new_seen)
            if attempt == _CONFIRM_READS:
                break
            # A broken read may be a write in progress (a writer that truncated the file and
            # has not written yet): report it only if the same bytes are still there a moment
            # later.
            time.sleep(self.confirm)
            again, again_data = self._read_settled()
            if again.key == new_seen.key:
                break
            new_seen, data = again, again_data
        return self._fail(problems, new_seen)

    def _swap(self, kb: Matcher, seen: _Seen) -> ReloadResult:
        self._current = kb  # the swap: one reference assignment, atomic for every reader
        self._seen = seen
        self._digest = seen.digest
        self._last_failure = None
        result = ReloadResult("reloaded", kb, self.path, digest=seen.digest)
        logger.info("reloaded %s: %d entries", self.path, len(kb))
        self._call(self._on_reload, result)
        return result

    def _as_before(self, key: str) -> ReloadResult:
        """The file is a version seen before: report it as then, without a second notice."""
        if key in self._failed:
            digest = None if key == _UNREADABLE else key
            result = ReloadResult("failed", self._current, self.path, self._failed[key], digest)
            self._last_failure = result
            return result
        return ReloadResult("unchanged", self._current, self.path, digest=self._digest)

    def _fail(self, problems: tuple[Problem, ...], seen: _Seen) -> ReloadResult:
        key = seen.key
        first = key not in self._failed
        self._failed[key] = problems
        if len(self._failed) > 100:  # forget old broken versions (bounded memory)
            self._failed.pop(next(iter(self._failed)))
        self._seen = seen
        result = ReloadResult(
            "failed", self._current, self.path, problems, seen.digest, first_report=first
        )
        self._last_failure = result
        if first:
            for problem in problems:
                logger.error("%s", problem)
            logger.error(
                "%s: not reloaded (%d problem%s); still serving the previous version",
                self.path, len(problems), "s" if len(problems) != 1 else "",
            )
            self._call(self._on_error, result)
        return result

    def _call(self, callback: Callback | None, result: ReloadResult) -> None:
        if callback is None:
            return
        try:
            callback(result)
        except Exception:  # a failing notifier must not stop reloading
            logger.exception("knowledge reload callback failed")

    def _stat_unchanged(self, seen: _Seen) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return seen.digest is None  # still unreadable: nothing new to say
        return (
            (st.st_ino, st.st_size, st.st_mtime_ns) == (seen.inode, seen.size, seen.mtime_ns)
            # racy: modified within a second of our read, it may have changed again since
            and seen.read_ns - seen.mtime_ns > _RACY_NS
        )

    def _read(self) -> tuple[_Seen, bytes | None]:
        read_ns = time.time_ns()
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_size > MAX_KNOWLEDGE_BYTES:
                    # let parse_knowledge explain the limit; its message names it
                    data = f.read(MAX_KNOWLEDGE_BYTES + 1)
                else:
                    data = f.read()
        except OSError:
            return _Seen(0, 0, 0, read_ns, None), None
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        return _Seen(st.st_ino, st.st_size, st.st_mtime_ns, read_ns, digest), data

    def _read_settled(self) -> tuple[_Seen, bytes | None]:
        """Read the file; while it was modified within ``settle`` seconds, wait and re-read."""
        seen, data = self._read()
        for _ in range(_SETTLE_READS):
            if data is None or seen.read_ns - seen.mtime_ns > self.settle * 1e9:
                break
            time.sleep(self.settle)
            again, again_data = self._read()
            if again.digest == seen.digest:
                return again, again_data
            seen, data = again, again_data
        return seen, data

    def _parse(self, data: bytes | None) -> Matcher:
        if data is None:
            raise KnowledgeError.single(self.path, 0, "cannot read the file (missing or unreadable)")
        kb = parse_knowledge_bytes(data, self.path)  # through the compiled-knowledge cache
        return with_model(kb, self.semantic)  # the model is loaded once per process

