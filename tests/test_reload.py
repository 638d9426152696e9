"""Live reload of the knowledge file (bot.reload): swaps, broken files, polling, concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.errors import KnowledgeError
from bot.matching import decide
from bot.reload import KnowledgeHolder, ReloadResult

BASE = """\
version: 1
title: "{title}"
thresholds: {{answer: 60, clarify: 40, margin: 6}}
entries:
  - id: review-time
    question: How long does the app review process take?
    phrasings: [review eta, how long is the review]
    answer: App review may take several days to two weeks.
  - id: not-approved
    question: Why was my app not approved?
    phrasings: [app rejected, why was my app declined]
    answer: Apps are not approved for various reasons.
"""

NEW_ENTRY = """\
  - id: delete-account
    question: How do I delete my developer account?
    phrasings: [remove my developer account, close developer account]
    answer: Open Settings and choose Delete account.
"""

BROKEN = BASE.format(title="broken") + """\
  - id: bad
    question: What is wrong here?
    answr: a misspelt key
"""


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@pytest.fixture
def kb_file(tmp_path: Path) -> Path:
    path = tmp_path / "faq.yaml"
    write(path, BASE.format(title="v1"))
    return path


class Recorder:
    """Collects callback results (thread-safe)."""

    def __init__(self) -> None:
        self.results: list[ReloadResult] = []
        self._lock = threading.Lock()

    def __call__(self, result: ReloadResult) -> None:
        with self._lock:
            self.results.append(result)


class TestKnowledgeHolder:
    def test_serves_the_file_it_was_given(self, kb_file):
        """A new holder serves the knowledge in the file, and is itself a knowledge provider."""
        holder = KnowledgeHolder(kb_file)
        assert holder.current.title == "v1"
        assert holder() is holder.current
        assert [e.id for e in holder.current] == ["review-time", "not-approved"]

    def test_broken_file_at_start_raises(self, tmp_path):
        """With nothing good to serve yet, a broken file raises KnowledgeError at construction."""
        path = tmp_path / "faq.yaml"
        write(path, BROKEN)
        with pytest.raises(KnowledgeError) as info:
            KnowledgeHolder(path)
        assert any("answr" in str(p) for p in info.value.problems)

    def test_knowledge_loaded_before_an_edit_is_not_served_as_current(self, kb_file):
        """A worker handed knowledge loaded before an edit (forked or restarted after it)
        serves the file as it is now; handed the current version, it does not parse again."""
        first = KnowledgeHolder(kb_file)
        same = KnowledgeHolder(kb_file, kb=first.current, digest=first.digest)
        assert same.current is first.current and same.digest == first.digest

        write_atomically(kb_file, BASE.format(title="v2") + NEW_ENTRY)
        reloaded = Recorder()
        late = KnowledgeHolder(kb_file, kb=first.current, digest=first.digest,
                               on_reload=reloaded)
        assert late.current.title == "v2" and late.digest != first.digest
        assert [r.status for r in reloaded.results] == ["reloaded"]
        assert late.check().status == "unchanged"

    def test_knowledge_loaded_before_a_broken_edit_stays_and_is_reported(self, kb_file):
        """Handed good knowledge while the file is now broken: it serves what it was handed and
        reports the broken version (the worker's notice), as a poll would."""
        first = KnowledgeHolder(kb_file)
        write_atomically(kb_file, BROKEN)
        errors = Recorder()
        late = KnowledgeHolder(kb_file, kb=first.current, digest=first.digest,
                               on_error=errors, confirm=0.0)
        assert late.current is first.current and late.digest == first.digest
        assert len(errors.results) == 1 and errors.results[0].first_report
        assert late.last_failure is not None
        assert late.check().status == "failed" and len(errors.results) == 1

    def test_edit_is_answered_after_a_check(self, kb_file):
        """A new entry written to the file is answered once a check has run."""
        reloaded = Recorder()
        holder = KnowledgeHolder(kb_file, on_reload=reloaded)
        question = "how do I delete my developer account?"
        assert decide(question, holder.current).action == "ticket"
        write(kb_file, BASE.format(title="v2") + NEW_ENTRY)
        for _ in range(3):
            if holder.check().status == "reloaded":
                break
        decision = decide(question, holder.current)
        assert (decision.action, decision.entry.id) == ("answer", "delete-account")
        assert [r.status for r in reloaded.results] == ["reloaded"]
        assert reloaded.results[0].kb is holder.current

    def test_same_bytes_rewritten_is_not_a_reload(self, kb_file):
        """Rewriting identical bytes (an editor's no-op save) keeps the same knowledge object."""
        reloaded = Recorder()
        holder = KnowledgeHolder(kb_file, on_reload=reloaded)
        before = holder.current
        write(kb_file, BASE.format(title="v1"))
        assert holder.check().status == "unchanged"
        assert holder.reload().status == "unchanged"
        assert holder.current is before and reloaded.results == []

    def test_unchanged_stat_skips_reading_until_forced(self, kb_file):
        """With size and mtime unchanged the file is not read; reload() reads it anyway."""
        old = 1_600_000_000 * 10**9
        os.utime(kb_file, ns=(old, old))
        holder = KnowledgeHolder(kb_file)
        write(kb_file, BASE.format(title="v9"))  # same size, same inode
        os.utime(kb_file, ns=(old, old))
        assert holder.check().status == "unchanged"
        assert holder.current.title == "v1"
        result = holder.reload()
        assert result.status == "reloaded" and holder.current.title == "v9"

    def test_broken_file_keeps_the_old_knowledge(self, kb_file):
        """A broken edit is not served: the previous knowledge stays, problems carry file:line."""
        holder = KnowledgeHolder(kb_file)
        before = holder.current
        write(kb_file, BROKEN)
        result = holder.check()
        assert result.status == "failed" and not result.ok
        assert holder.current is before and result.kb is before
        lines = [str(p) for p in result.problems]
        assert any(line.startswith(f"{kb_file}:15: ") and "answr" in line for line in lines)
        assert "still serving the previous version" in result.summary
        assert holder.last_failure == result

    def test_problems_are_logged_once(self, kb_file, caplog):
        """Each PATH:LINE problem of a broken version is logged once, not on every check."""
        holder = KnowledgeHolder(kb_file)
        write(kb_file, BROKEN)
        with caplog.at_level("ERROR", logger="faqbot.reload"):
            for _ in range(5):
                holder.check(force=True)
        logged = [r.getMessage() for r in caplog.records if "answr" in r.getMessage()]
        assert len(logged) == 1 and logged[0].startswith(f"{kb_file}:15: ")

    def test_one_notice_per_broken_version(self, kb_file):
        """on_error runs once per broken version however many checks see it, again for a new one."""
        errors = Recorder()
        holder = KnowledgeHolder(kb_file, on_error=errors)
        write(kb_file, BROKEN)
        results = [holder.check(force=i % 2 == 0) for i in range(10)]
        assert all(r.status == "failed" for r in results)
        assert [r.first_report for r in results] == [True] + [False] * 9
        assert len(errors.results) == 1
        write(kb_file, BROKEN.replace("answr", "anser"))
        holder.check()
        holder.check()
        assert len(errors.results) == 2
        assert any("anser" in str(p) for p in errors.results[1].problems)

    def test_fixed_file_is_reloaded(self, kb_file):
        """After a broken version, a fixed file is served and the failure is cleared."""
        holder = KnowledgeHolder(kb_file)
        write(kb_file, BROKEN)
        holder.check()
        write(kb_file, BASE.format(title="fixed") + NEW_ENTRY)
        result = holder.check()
        assert result.status == "reloaded" and holder.current.title == "fixed"
        assert holder.last_failure is None
        assert "Reloaded" in result.summary and "3 entries" in result.summary

    def test_missing_file_keeps_serving(self, kb_file):
        """A deleted file is one failure (one notice); the file coming back is picked up."""
        errors = Recorder()
        holder = KnowledgeHolder(kb_file, on_error=errors)
        kb_file.unlink()
        assert holder.check().status == "failed"
        assert holder.check().status == "failed"
        assert len(errors.results) == 1
        assert "cannot read" in str(errors.results[0].problems[0])
        write(kb_file, BASE.format(title="back"))
        assert holder.check().status == "reloaded"

    def test_failing_callback_does_not_stop_reloading(self, kb_file):
        """An exception in on_error is logged; the holder keeps working."""

        def explode(result):
            raise RuntimeError("notifier down")

        holder = KnowledgeHolder(kb_file, on_error=explode, on_reload=explode)
        write(kb_file, BROKEN)
        assert holder.check().status == "failed"
        write(kb_file, BASE.format(title="v3"))
        assert holder.check().status == "reloaded" and holder.current.title == "v3"


class TestPolling:
    def test_polling_thread_picks_up_an_edit(self, kb_file):
        """With start(), an edit is served within a few intervals without any explicit check."""
        with KnowledgeHolder(kb_file, interval=0.02) as holder:
            write_atomically(kb_file, BASE.format(title="v2") + NEW_ENTRY)
            deadline = time.monotonic() + 5
            while holder.current.get("delete-account") is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert holder.current.get("delete-account") is not None

    def test_stop_ends_the_thread(self, kb_file):
        """stop() ends the polling thread promptly and checks stop."""
        holder = KnowledgeHolder(kb_file, interval=0.01)
        holder.start()
        holder.start()  # a second start is harmless
        time.sleep(0.05)
        holder.stop()
        assert not any(t.name == "faqbot-knowledge-reload" for t in threading.enumerate())
        checks = holder.checks
        time.sleep(0.05)
        assert holder.checks == checks

    def test_invalid_interval_is_refused(self, kb_file):
        """A zero or negative interval is a ValueError."""
        with pytest.raises(ValueError):
            KnowledgeHolder(kb_file, interval=0)


VERSIONED = """\
version: 1
title: "{v}"
thresholds: {{answer: 60, clarify: 40, margin: 6}}
entries:
  - id: version-{low}
    question: Which version of the knowledge is this?
    phrasings: [what version is served, which knowledge version]
    answer: "Answer from version {v}"
  - id: review-time-{low}
    question: How long does the app review process take?
    phrasings: [review eta, how long is the review]
    answer: "Review answer from version {v}"
"""


def versioned(v: str) -> str:
    return VERSIONED.format(v=v, low=v.lower())


# Another process rewrites the file, as an editor or a deploy would: alternately in place
# (truncate, then write) and atomically (write a temporary file, rename it over).
WRITER = """
import os, sys, time
path, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
for i in range(50):
    text = a if i % 2 == 0 else b  # ends with b
    if i % 3:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    time.sleep(0.01)
"""


class TestConcurrentReaders:
    def test_readers_always_see_one_whole_version(self, kb_file):
        """8 readers deciding while another process flips the file between two versions 50 times
        never see an error, and every answer belongs to the same version as its entry id."""
        write(kb_file, versioned("A"))
        errors = Recorder()
        holder = KnowledgeHolder(kb_file, interval=0.002, on_error=errors)
        stop = threading.Event()
        failures: list[BaseException] = []
        seen: list[set[str]] = [set() for _ in range(8)]
        decisions = [0] * 8

        def reader(n: int) -> None:
            questions = ["which version of the knowledge is this", "review eta"]
            try:
                while not stop.is_set():
                    kb = holder.current
                    d = decide(questions[decisions[n] % 2], kb)
                    decisions[n] += 1
                    assert d.action == "answer", d
                    version = d.entry.id.rsplit("-", 1)[1].upper()
                    assert d.entry.answer.endswith(f"from version {version}"), d.entry
                    assert kb.title == version
                    seen[n].add(version)
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
        holder.start()
        for t in threads:
            t.start()
        try:
            subprocess.run(
                [sys.executable, "-c", WRITER, str(kb_file), versioned("A"), versioned("B")],
                check=True, timeout=60,
            )
            deadline = time.monotonic() + 10
            while holder.current.title != "B" and time.monotonic() < deadline:
                time.sleep(0.01)  # readers keep reading until the last version is served
            time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
            holder.stop()
        assert failures == []
        assert all(d > 0 for d in decisions)
        assert set().union(*seen) == {"A", "B"}
        assert holder.current.title == "B"
        assert errors.results == []

    def test_a_slow_in_place_write_is_not_reported_as_broken(self, kb_file):
        """A file caught between truncation and writing is read again, not reported as broken."""
        errors = Recorder()
        holder = KnowledgeHolder(kb_file, on_error=errors, confirm=0.3)
        write(kb_file, "")  # the writer has truncated the file ...
        finisher = threading.Timer(0.1, write, (kb_file, BASE.format(title="v2") + NEW_ENTRY))
        finisher.start()  # ... and writes the new text a moment later
        try:
            result = holder.check()
        finally:
            finisher.join()
        assert result.status == "reloaded" and holder.current.get("delete-account")
        assert errors.results == []
