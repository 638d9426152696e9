"""The compiled-knowledge cache: a later load of the same bytes skips the parse, and nothing
about the cache is ever an error for the user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot import kbcache, knowledge
from bot.errors import KnowledgeError
from bot.knowledge import load_knowledge, parse_knowledge
from bot.matching import decide
from bot.reload import KnowledgeHolder
from tests.conftest import BUNDLED_KNOWLEDGE, SMALL_KB

QUESTIONS = [
    "how long does review take?",
    "review eta",
    "why was my app declined",
    "does it work with rn",
    "we need more users allowed",
    "hw long is the reveiw",
    "talk to a human please",
    "where is the lunch menu?",
    "is react native approved",
]


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache folder for one test; the cache on."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv(kbcache.ENV, raising=False)
    return home / "faqbot"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of every real parse (a cache hit does not parse)."""
    seen: list[str] = []
    real = knowledge.parse_knowledge

    def counting(text: str, path: str = "<string>"):
        seen.append(path)
        return real(text, path)

    monkeypatch.setattr(knowledge, "parse_knowledge", counting)
    return seen


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.kb")) if folder.exists() else []


def decisions(kb) -> list[dict]:
    """What the bot would do with each question (the ``ask --json`` objects), and why."""
    out = []
    for q in QUESTIONS:
        d = decide(q, kb, explain=True)
        out.append(d.to_json() | {"explain": repr(d.explain)})
    return out


class TestHit:
    def test_a_second_load_comes_from_the_cache_and_decides_the_same(
        self, cache_home, parses, tmp_path
    ):
        """The bundled FAQ: the cached knowledge base equals the parsed one, entry for entry,
        and makes the same decisions."""
        path = tmp_path / "faq.yaml"
        path.write_bytes(BUNDLED_KNOWLEDGE.read_bytes())
        parsed = load_knowledge(path)
        assert parses == [str(path)] and len(cache_files(cache_home)) == 1
        cached = load_knowledge(path)
        assert parses == [str(path)]  # no second parse
        assert cached is not parsed
        assert cached.knowledge == parsed.knowledge and cached.entries == parsed.entries
        assert cached.thresholds == parsed.thresholds and cached.synonyms == parsed.synonyms
        assert cached.handoff == parsed.handoff and cached.title == parsed.title
        assert cached.path == str(path) and cached.topics == parsed.topics
        assert cached.entry("cap") == parsed.entry("cap")
        assert decisions(cached) == decisions(parsed)

    def test_cache_folder_and_files_are_private(self, cache_home, small_kb_path):
        load_knowledge(small_kb_path)
        assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
        for file in cache_files(cache_home):
            assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0

    def test_same_bytes_at_another_path_keep_their_own_path(self, cache_home, parses, tmp_path):
        first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
        first.write_text(SMALL_KB, encoding="utf-8")
        second.write_text(SMALL_KB, encoding="utf-8")
        load_knowledge(first)
        kb = load_knowledge(second)
        assert parses == [str(first)] and kb.path == str(second)

    def test_the_reloader_uses_the_cache(self, cache_home, parses, small_kb_path):
        """KnowledgeHolder reads the file and parses it through the cache too."""
        load_knowledge(small_kb_path)
        holder = KnowledgeHolder(small_kb_path)
        assert parses == [str(small_kb_path)]
        assert holder.current.entries == parse_knowledge(SMALL_KB).entries

    def test_only_the_most_recent_files_are_kept(self, cache_home, tmp_path):
        for n in range(kbcache.KEEP + 3):
            path = tmp_path / f"kb{n}.yaml"
            path.write_text(SMALL_KB.replace("Test FAQ", f"Test FAQ {n}"), encoding="utf-8")
            load_knowledge(path)
        assert len(cache_files(cache_home)) == kbcache.KEEP


class TestMiss:
    def test_a_changed_file_is_parsed_again(self, cache_home, parses, small_kb_path):
        load_knowledge(small_kb_path)
        small_kb_path.write_text(SMALL_KB.replace("Test FAQ", "Changed FAQ"), encoding="utf-8")
        kb = load_knowledge(small_kb_path)
        assert kb.title == "Changed FAQ" and len(parses) == 2
        assert len(cache_files(cache_home)) == 2

    def test_another_code_version_misses(self, cache_home, parses, small_kb_path, monkeypatch):
        load_knowledge(small_kb_path)
        monkeypatch.setattr(kbcache, "_code_version", lambda: "another version")
        load_knowledge(small_kb_path)
        assert len(parses) == 2

    @pytest.mark.parametrize(
        "damage",
        [
            lambda data: data[: len(data) // 2],  # truncated
            lambda data: b"",  # empty
            lambda data: data[:-200] + bytes(b ^ 0xFF for b in data[-200:]),  # corrupt payload
            lambda data: b"garbage" + data,  # a foreign header
        ],
        ids=["truncated", "empty", "corrupt", "header"],
    )
    def test_a_damaged_cache_file_falls_back_to_a_parse(
        self, cache_home, parses, small_kb_path, damage
    ):
        expected = load_knowledge(small_kb_path)
        [file] = cache_files(cache_home)
        file.write_bytes(damage(file.read_bytes()))
        kb = load_knowledge(small_kb_path)
        assert kb.knowledge == expected.knowledge and len(parses) == 2
        assert load_knowledge(small_kb_path).knowledge == expected.knowledge and len(parses) == 2

    def test_an_unpicklable_cache_file_falls_back(self, cache_home, parses, small_kb_path):
        """A file with a valid header and checksum whose pickle is not a knowledge base."""
        import hashlib
        import pickle

        load_knowledge(small_kb_path)
        [file] = cache_files(cache_home)
        for payload in (pickle.dumps({"not": "knowledge"}), b"\x80\x05not a pickle"):
            header = kbcache._MAGIC + file.stem.encode() + b"\n"
            file.write_bytes(header + hashlib.sha256(payload).digest() + payload)
            assert load_knowledge(small_kb_path).title == "Test FAQ"
        assert len(parses) == 3

    def test_an_unreadable_cache_file_falls_back(self, cache_home, parses, small_kb_path):
        """Reading the cache file fails (here: a folder has its name)."""
        load_knowledge(small_kb_path)
        [file] = cache_files(cache_home)
        file.unlink()
        file.mkdir()
        assert load_knowledge(small_kb_path).title == "Test FAQ"
        assert len(parses) == 2

    def test_an_unwritable_cache_folder_falls_back(self, tmp_path, parses, small_kb_path,
                                                   monkeypatch):
        """The cache folder cannot be created (a file is in the way): a normal parse."""
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
        assert load_knowledge(small_kb_path).title == "Test FAQ"
        assert load_knowledge(small_kb_path).title == "Test FAQ"
        assert len(parses) == 2

    def test_a_failed_write_falls_back(self, cache_home, parses, small_kb_path, monkeypatch):
        def full_disk(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(kbcache.os, "replace", full_disk)
        assert load_knowledge(small_kb_path).title == "Test FAQ"
        assert cache_files(cache_home) == [] and list(cache_home.iterdir()) == []  # no temp left

    def test_a_folder_open_to_others_is_not_trusted(self, cache_home, parses, small_kb_path,
                                                    monkeypatch):
        """The folder of another user is never read (its files would be unpickled)."""
        load_knowledge(small_kb_path)
        monkeypatch.setattr(kbcache.os, "getuid", lambda: os.stat(cache_home).st_uid + 1,
                            raising=False)
        assert load_knowledge(small_kb_path).title == "Test FAQ"
        assert len(parses) == 2

    @pytest.mark.parametrize("value", ["0", "false", "off"])
    def test_the_environment_turns_it_off(self, cache_home, parses, small_kb_path, monkeypatch,
                                          value):
        monkeypatch.setenv("FAQBOT_KNOWLEDGE_CACHE", value)
        load_knowledge(small_kb_path)
        load_knowledge(small_kb_path)
        assert len(parses) == 2 and not cache_home.exists()


class TestBrokenFiles:
    def test_broken_yaml_is_never_cached_and_reports_its_line(self, cache_home, tmp_path):
        path = tmp_path / "kb.yaml"
        path.write_text(SMALL_KB + "  - id: [broken\n", encoding="utf-8")
        for _ in range(2):
            with pytest.raises(KnowledgeError) as info:
                load_knowledge(path)
            [problem] = info.value.problems
            assert str(problem).startswith(f"{path}:") and problem.line > 1
            assert "not valid YAML" in problem.message
        assert cache_files(cache_home) == []

    def test_invalid_knowledge_is_never_cached(self, cache_home, tmp_path):
        path = tmp_path / "kb.yaml"
        path.write_text(SMALL_KB.replace("ticket: cap_increase", "ticket: nope"), encoding="utf-8")
        for _ in range(2):
            with pytest.raises(KnowledgeError, match=r"kb\.yaml:\d+: entry 'cap': ticket"):
                load_knowledge(path)
        assert cache_files(cache_home) == []

    def test_a_file_that_breaks_after_being_cached_reports_its_problems(
        self, cache_home, small_kb_path
    ):
        load_knowledge(small_kb_path)
        small_kb_path.write_text(SMALL_KB + "colour: red\n", encoding="utf-8")
        with pytest.raises(KnowledgeError, match=r"small\.yaml:\d+: the file: unknown key"):
            load_knowledge(small_kb_path)

    def test_non_utf8_is_reported_with_its_line(self, cache_home, tmp_path):
        path = tmp_path / "kb.yaml"
        path.write_bytes(SMALL_KB.encode() + b"  # caf\xe9\n")
        with pytest.raises(KnowledgeError, match="not UTF-8"):
            load_knowledge(path)
        assert cache_files(cache_home) == []


class TestBytes:
    """Other files kept in the cache folder (the semantic model's graph, bot/encoder.py)."""

    def test_stored_bytes_come_back_and_damaged_ones_are_a_miss(self, cache_home: Path) -> None:
        kbcache.store_bytes("encoder-abc", ".onnx", b"graph" * 1000)
        assert bytes(kbcache.load_bytes("encoder-abc", ".onnx")) == b"graph" * 1000
        assert kbcache.load_bytes("encoder-other", ".onnx") is None
        file = cache_home / "encoder-abc.onnx"
        file.write_bytes(file.read_bytes()[:-1])
        assert kbcache.load_bytes("encoder-abc", ".onnx") is None

    def test_only_known_suffixes(self, cache_home: Path) -> None:
        with pytest.raises(ValueError):
            kbcache.store_bytes("x", ".kb", b"not a knowledge base")

    def test_they_count_among_the_files_kept(self, cache_home: Path) -> None:
        for n in range(kbcache.KEEP + 2):
            kbcache.store_bytes(f"encoder-{n}", ".onnx", b"graph")
            os.utime(cache_home / f"encoder-{n}.onnx", (n, n))
        kbcache.store_bytes("encoder-last", ".onnx", b"graph")
        assert len(list(cache_home.glob("*.onnx"))) == kbcache.KEEP

    def test_off_means_nothing_stored(self, cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(kbcache.ENV, "0")
        kbcache.store_bytes("encoder-abc", ".onnx", b"graph")
        assert kbcache.load_bytes("encoder-abc", ".onnx") is None
        assert not cache_home.exists() or not list(cache_home.iterdir())
