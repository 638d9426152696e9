"""Loading and validating knowledge files: every problem reported with its line."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from bot.errors import KnowledgeError
from bot.knowledge import MAX_KNOWLEDGE_BYTES, load_knowledge, parse_knowledge

VALID_ENTRY = """\
  - id: one
    question: First question?
    answer: First answer.
"""


def problems(text: str) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        parse_knowledge(textwrap.dedent(text), "kb.yaml")
    return [str(p) for p in info.value.problems]


class TestValidFiles:
    def test_small_file_loads_into_an_immutable_knowledge_base(self, small_kb):
        """A valid file yields entries, thresholds, synonyms and a ready index."""
        assert [e.id for e in small_kb] == ["review-time", "not-approved", "react-native", "cap"]
        assert small_kb.thresholds.answer == 60
        assert small_kb.entry("cap").ticket == "cap_increase"
        assert small_kb.index.phrasing_text  # built at load
        with pytest.raises(dataclasses.FrozenInstanceError):
            small_kb.entries = ()  # type: ignore[misc]

    def test_entry_line_numbers_are_recorded(self, small_kb):
        """Each entry knows the line it starts on, for messages that point at it."""
        lines = [e.line for e in small_kb]
        assert lines == sorted(lines) and lines[0] > 1

    def test_topics_are_distinct_tags_in_order(self, small_kb):
        """Topics list each tag once, in first-seen order."""
        assert small_kb.topics == ["review", "platforms", "limits"]


class TestProblemsWithLines:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("entries: [\n", "kb.yaml:2: not valid YAML"),
            ("- just\n- a list\n", "kb.yaml:1: the file must be a mapping"),
            ("", "kb.yaml:1: the file is empty"),
            ("entries: {}\n", "kb.yaml:1: entries must be a list"),
            ("entries: []\n", "kb.yaml:1: entries must list at least one entry"),
            ("title: x\n", "kb.yaml:1: the file: missing required key 'entries'"),
            ("entries:\n" + VALID_ENTRY + "colour: red\n", "kb.yaml:5: the file: unknown key 'colour'"),
        ],
    )
    def test_file_level_problems(self, text, expected):
        """Structural problems name the file and the line."""
        assert any(p.startswith(expected) for p in problems(text)), problems(text)

    def test_every_problem_is_reported_at_once(self):
        """Several broken entries give several messages, each with its own line."""
        found = problems(
            """\
            thresholds: {answer: 140, clarify: 20}
            entries:
              - id: Bad Id
                question: Q?
                answer: A.
              - id: two
                question: ""
                answer: A.
                colour: blue
              - id: three
                question: Q3?
                answer: 12
              - question: Q4?
                answer: A4.
              - just text
            """
        )
        assert "kb.yaml:1: thresholds.answer must be between 0 and 100, got 140" in found
        assert any(p.startswith("kb.yaml:3: id 'Bad Id' must be lower-case") for p in found)
        assert "kb.yaml:7: entry 'two': question must not be empty" in found
        assert any(p.startswith("kb.yaml:9: entry: unknown key 'colour'") for p in found)
        assert "kb.yaml:12: entry 'three': answer must be text, not a number" in found
        assert "kb.yaml:13: entry: missing required key 'id'" in found
        assert "kb.yaml:15: entry must be a mapping (key: value), not the value 'just text'" in found
        assert len(found) == 7

    def test_duplicate_ids(self):
        """Two entries with one id: the second is reported, naming the first's line."""
        found = problems("entries:\n" + VALID_ENTRY + VALID_ENTRY.replace("First", "Other"))
        assert found == ["kb.yaml:5: duplicate id 'one' (first used at line 2)"]

    def test_phrasing_shared_by_two_entries(self):
        """The same phrasing (ignoring case and spacing) in two entries is ambiguous."""
        found = problems(
            """\
            entries:
              - id: one
                question: Q1?
                answer: A1.
                phrasings: [review eta]
              - id: two
                question: Q2?
                answer: A2.
                phrasings: ["Review  ETA"]
            """
        )
        assert found == [
            "kb.yaml:6: entry 'two': phrasing 'Review  ETA' is also used by entry 'one' (line 2)"
        ]

    def test_phrasing_listed_twice_in_one_entry(self):
        """A repeated phrasing inside one entry is reported at the repeat."""
        found = problems(
            """\
            entries:
              - id: one
                question: Q1?
                answer: A1.
                phrasings:
                  - review eta
                  - review eta
            """
        )
        assert found == ["kb.yaml:7: entry 'one': phrasing 'review eta' is listed twice"]

    def test_duplicate_mapping_keys(self):
        """YAML would silently keep the last of two equal keys; the loader refuses."""
        found = problems(
            """\
            entries:
              - id: one
                question: Q1?
                answer: A1.
                answer: A2.
            """
        )
        assert found == ["kb.yaml:5: entry: duplicate key 'answer'"]

    def test_thresholds_out_of_range_and_inconsistent(self):
        """Thresholds are checked one by one and against each other."""
        found = problems(
            "thresholds: {answer: 50, clarify: 70, margin: -1, candidates: 9}\nentries:\n"
            + VALID_ENTRY
        )
        assert "kb.yaml:1: thresholds.margin must be between 0 and 100, got -1" in found
        assert "kb.yaml:1: thresholds.candidates must be between 2 and 5, got 9" in found
        assert "kb.yaml:1: thresholds.clarify (70) must not be above thresholds.answer (50)" in found

    def test_familiar_threshold_is_checked_and_defaults_to_answer(self):
        """`familiar` is optional (then it is `answer`), 0-100, and not below `clarify`."""
        found = problems(
            "thresholds: {answer: 60, familiar: 30, clarify: 40}\nentries:\n" + VALID_ENTRY
        )
        assert "kb.yaml:1: thresholds.clarify (40) must not be above thresholds.familiar (30)" in found
        found = problems("thresholds: {familiar: 120}\nentries:\n" + VALID_ENTRY)
        assert "kb.yaml:1: thresholds.familiar must be between 0 and 100, got 120" in found
        kb = parse_knowledge("thresholds: {answer: 60, clarify: 40}\nentries:\n" + VALID_ENTRY,
                             "kb.yaml")
        assert kb.thresholds.familiar is None and kb.thresholds.answer_familiar == 60

    def test_semantic_settings_are_checked(self):
        """`semantic:` needs weight (0-1) and answer; familiar defaults to answer; neither
        may be below thresholds.clarify; unknown keys are named."""
        kb = parse_knowledge(
            "thresholds: {answer: 60, clarify: 40}\nsemantic: {weight: 0.5, answer: 55}\n"
            "entries:\n" + VALID_ENTRY, "kb.yaml")
        assert (kb.semantic.weight, kb.semantic.answer, kb.semantic.familiar) == (0.5, 55, 55)
        assert parse_knowledge("entries:\n" + VALID_ENTRY, "kb.yaml").semantic is None
        found = problems(
            "thresholds: {clarify: 40}\nsemantic: {weight: 2, answer: 55, familiar: 30, w: 1}\n"
            "entries:\n" + VALID_ENTRY)
        assert "kb.yaml:2: semantic.weight must be between 0 and 1, got 2" in found
        assert any(p.startswith("kb.yaml:2:") and "'w'" in p for p in found)
        found = problems(
            "thresholds: {clarify: 40}\nsemantic: {answer: 55, familiar: 30}\n"
            "entries:\n" + VALID_ENTRY)
        assert any(p.startswith("kb.yaml:2:") and "weight" in p for p in found)
        found = problems(
            "thresholds: {clarify: 40}\nsemantic: {weight: 0.5, answer: 55, familiar: 30}\n"
            "entries:\n" + VALID_ENTRY)
        assert "kb.yaml:2: thresholds.clarify (40) must not be above semantic.familiar (30)" in found

    def test_unknown_ticket_reason_and_bad_link(self):
        """Entry fields with fixed vocabularies are checked."""
        found = problems(
            """\
            entries:
              - id: one
                question: Q1?
                answer: A1.
                ticket: refund
                links: [{title: Docs, url: "javascript:alert(1)"}]
            """
        )
        assert any("ticket must be one of" in p and p.startswith("kb.yaml:5:") for p in found)
        assert any("link url must start with https://" in p and p.startswith("kb.yaml:6:")
                   for p in found)

    def test_synonym_in_two_groups(self):
        """A word may belong to one synonym group only."""
        found = problems("synonyms:\n  - [a1, b1]\n  - [c1, a1]\nentries:\n" + VALID_ENTRY)
        assert found == ["kb.yaml:3: synonym 'a1' is already in the group at line 2"]

    def test_not_covered_problems_name_their_line(self):
        """A `not_covered` question listed twice, or one that an entry answers (one of its
        phrasings), or one that is not text, is reported at its own line."""
        found = problems(
            "not_covered:\n"
            "  - how much does the API cost\n"
            "  - How much does the  API cost?\n"
            "  - first question\n"
            "  - [a, list]\n"
            "entries:\n" + VALID_ENTRY
        )
        assert found == [
            "kb.yaml:3: not_covered question 'How much does the  API cost?' is already listed "
            "at line 2",
            "kb.yaml:4: not_covered question 'first question' is a phrasing of entry 'one' "
            "(line 7): an entry answers it",
            "kb.yaml:5: not_covered item must be a single value, not a list",
        ]

    def test_not_covered_is_kept_in_order_with_spaces_collapsed(self):
        kb = parse_knowledge(
            "not_covered:\n  - how much does  the API cost\n  - is there a Flutter SDK\n"
            "entries:\n" + VALID_ENTRY, "kb.yaml")
        assert kb.not_covered == ("how much does the API cost", "is there a Flutter SDK")
        assert parse_knowledge("entries:\n" + VALID_ENTRY, "kb.yaml").not_covered == ()


class TestHostileFiles:
    def test_python_tags_are_refused(self):
        """Only YAML's safe subset: a python object tag is an error, never constructed."""
        found = problems(
            "entries:\n  - id: one\n    question: !!python/object/apply:os.system [echo hi]\n"
            "    answer: A.\n"
        )
        assert len(found) == 1 and found[0].startswith("kb.yaml:3:")
        assert "python/object" in found[0]

    def test_billion_laughs_is_refused_quickly(self):
        """Anchors and aliases are refused, so an alias bomb cannot expand."""
        lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 9):
            prev = chr(ord("a") + i - 1)
            lines.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + prev] * 9)}]")
        lines.append("entries:\n  - id: one\n    question: *i\n    answer: A.")
        found = problems("\n".join(lines) + "\n")
        assert any("anchors and aliases" in p for p in found)

    def test_oversized_text_is_refused(self):
        """A file over the size limit is refused before parsing."""
        with pytest.raises(KnowledgeError, match="too large"):
            parse_knowledge("#" * (MAX_KNOWLEDGE_BYTES + 1), "big.yaml")

    def test_missing_and_non_utf8_files(self, tmp_path):
        """Unreadable files are reported with the path, not a traceback."""
        with pytest.raises(KnowledgeError, match=r"nope\.yaml:0: cannot read the file"):
            load_knowledge(tmp_path / "nope.yaml")
        bad = tmp_path / "latin1.yaml"
        bad.write_bytes(b"entries:\n  - id: caf\xe9\n")
        with pytest.raises(KnowledgeError, match=r"latin1\.yaml:2: the file is not UTF-8"):
            load_knowledge(bad)
