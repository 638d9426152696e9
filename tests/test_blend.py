"""The calibrated blend: how knowledge without `thresholds:` (an imported FAQ) is decided, and
its word on entries with few phrasings in tuned knowledge (docs/matching.md)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from bot.knowledge import parse_knowledge
from bot.matching import blend, decide, decide_tuned
from bot.matching.explain import NotCovered
from bot.matching.index import THIN_PHRASINGS as THIN
from bot.semantic import PASSAGE_CHARS, answer_passage, attach

# An FAQ as `faqbot kb import` writes one: questions and answers, no phrasings, no thresholds.
GADGETS = """\
version: 1
title: Gadget FAQ
handoff: [talk to a human]
entries:
  - id: shipping
    question: How long does delivery take?
    answer: |-
      Orders leave our warehouse within two business days. Couriers then need three to five
      days within Europe; tracking numbers arrive by email.
  - id: returns
    question: Can I send a gadget back?
    answer: |-
      Yes: within 30 days of delivery, unused and in its box. Print the prepaid label from
      your account and drop the parcel at any post office; the refund follows within a week.
  - id: firmware
    question: How do I update the firmware?
    answer: |-
      Open the companion app, choose Settings, then Firmware, and tap Install. Keep the
      gadget charged above 50% and near your phone until it restarts.
  - id: warranty
    question: What does the warranty cover?
    answer: |-
      Two years against manufacturing defects. Water damage and cracked screens are not
      covered; repairs outside the warranty are quoted before any work starts.
  - id: bulk
    question: Can my company order more than 100 units?
    answer: Larger orders need a quote from our sales team, who will open a request for you.
    ticket: requested
"""


@pytest.fixture(scope="module")
def gadgets():
    return parse_knowledge(GADGETS, "gadgets.yaml")


class TopicEncoder:
    """A stand-in for the sentence model: one dimension per topic word, so a text's vector
    says which topics it names (tests/test_semantic.py tests the real model)."""

    TOPICS = ("parcel", "firmware", "warranty", "refund", "weather")

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts, batch_size: int = 32):
        self.seen.extend(texts)
        rows = []
        for text in texts:
            row = np.array([float(t in text.lower()) for t in self.TOPICS] + [0.3])
            rows.append(row / np.linalg.norm(row))
        return np.array(rows, dtype=np.float32)


class TestWordsOnly:
    """Without the semantic model: BM25 over each entry's question and answer, and the
    lexical score."""

    def test_knowledge_without_thresholds_is_decided_by_the_blend(self, gadgets):
        assert not gadgets.thresholds.tuned
        d = decide("print a prepaid label for my parcel", gadgets, explain=True)
        assert (d.action, d.entry.id) == ("answer", "returns")
        assert d.explain.blend is not None and d.explain.tuned is None
        assert d.explain.blend.model is False

    @pytest.mark.parametrize(("question", "entry"), [
        ("print a prepaid label for my parcel", "returns"),  # words only its answer uses
        ("the screen cracked, is that covered?", "warranty"),
        ("tracking number by email", "shipping"),
        ("how do i install the new firmware version", "firmware"),
    ])
    def test_words_of_the_answer_find_the_entry(self, gadgets, question, entry):
        d = decide(question, gadgets)
        assert (d.action, d.entry.id) == ("answer", entry)
        assert d.score >= blend.BLEND_SCALE  # the answer threshold is shown as 70

    @pytest.mark.parametrize("question", ["what is the weather in paris", "battery",
                                          "refund after delivery"])
    def test_little_evidence_is_a_ticket(self, gadgets, question):
        d = decide(question, gadgets)
        assert (d.action, d.reason) == ("ticket", "no_match")

    def test_one_entry_clearly_ahead_is_offered_alone(self, gadgets):
        d = decide("screen repair quote", gadgets, explain=True)
        assert d.action == "clarify"
        assert [c.entry_id for c in d.candidates] == ["warranty"]
        assert blend.BLEND_WORDS_ONLY.clarify <= d.explain.blend.ranked[0].blend \
            < blend.BLEND_WORDS_ONLY.answer

    def test_two_close_entries_are_both_offered(self, gadgets):
        d = decide("gadget in its box near your phone", gadgets)
        assert d.action == "clarify"
        assert [c.entry_id for c in d.candidates] == ["returns", "firmware"]
        assert d.candidates[0].score > d.candidates[1].score
        # a runner-up further than BLEND_CLOSE x the answer threshold is not offered
        assert [c.entry_id for c in decide("charged gadget restarts", gadgets).candidates] \
            == ["firmware"]

    def test_handoff_and_ticket_entries(self, gadgets):
        assert decide("can I talk to a human", gadgets).reason == "requested"
        d = decide("we want to order 500 units for the company", gadgets)
        assert (d.action, d.entry.id, d.reason) == ("ticket", "bulk", "requested")


class TestBm25:
    def test_only_entries_that_use_a_word_score(self, gadgets):
        index = gadgets.index
        scores = index.bm25(index.vocabulary.terms("prepaid label"))
        assert scores[index.entry_ids.index("returns")] > 0
        assert np.count_nonzero(scores) == 1

    def test_each_term_counts_once(self, gadgets):
        index = gadgets.index
        once = index.bm25(index.vocabulary.terms("firmware"))
        assert np.array_equal(once, index.bm25(index.vocabulary.terms("firmware firmware")))

    def test_a_word_of_the_question_weighs_more_than_one_of_the_answer(self):
        kb = parse_knowledge(
            "entries:\n"
            "  - {id: a, question: Where is the zebra?, answer: In the park.}\n"
            "  - {id: b, question: Where is the park?, answer: Near the zebra.}\n"
            "  - {id: c, question: Is it open?, answer: Yes.}\n")
        scores = kb.index.bm25(kb.index.vocabulary.terms("zebra"))
        assert scores[0] > scores[1] > 0 == scores[2]

    def test_scores_are_scaled_by_the_largest_idf(self):
        """A word only one entry uses scores about the same in a small and a large FAQ."""
        def lone_word_score(n_entries: int) -> float:
            rows = "".join(f"  - {{id: e{i}, question: Question {i}?, answer: Plain answer.}}\n"
                           for i in range(n_entries - 1))
            kb = parse_knowledge("entries:\n  - {id: z, question: Zebra?, answer: Plain answer.}\n"
                                 + rows)
            return float(kb.index.bm25(["zebra"])[0])

        small, large = lone_word_score(5), lone_word_score(500)
        unscaled = math.log(1 + 500) / math.log(1 + 5)
        assert abs(large / small - 1) < abs(unscaled - 1) / 3


class TestWithTheModel:
    def test_the_cosine_with_the_answer_passage_decides(self, gadgets):
        encoder = TopicEncoder()
        kb = attach(gadgets, encoder)
        passage = answer_passage(gadgets.entry("returns").question, gadgets.entry("returns").answer)
        assert passage in encoder.seen  # each entry's question with its answer's opening
        assert passage.startswith("Can I send a gadget back? Yes: within 30 days")
        d = decide("when does my refund come", kb, explain=True)
        assert (d.action, d.entry.id) == ("answer", "returns")
        assert d.explain.blend.model is True
        assert d.explain.blend.ranked[0].cosine > d.explain.blend.ranked[1].cosine

    def test_scores_are_in_units_of_the_files_own_level(self, gadgets):
        """The file's level is how well its own questions match their own entries (cosine
        with the passage + BM25); a question's blend is measured in that unit."""
        encoder = TopicEncoder()
        kb = attach(gadgets, encoder)
        questions = encoder.encode([e.question for e in gadgets.entries])
        passages = encoder.encode([answer_passage(e.question, e.answer) for e in gadgets.entries])
        assert kb.vectors.question_to_answer == pytest.approx(
            float(np.mean(np.sum(questions * passages, axis=1))), abs=1e-5)
        own = [kb.index.bm25(kb.index.vocabulary.terms(e.question))[n]
               for n, e in enumerate(gadgets.entries)]
        assert kb.index.question_bm25 == pytest.approx(float(np.mean(own)))
        d = decide("when does my refund come", kb, explain=True)
        level = d.explain.blend.level
        assert level == pytest.approx(kb.vectors.question_to_answer
                                      + blend.BLEND_BM25 * kb.index.question_bm25, abs=1e-3)
        top = d.explain.blend.ranked[0]
        assert top.blend == pytest.approx((top.cosine + 0.1 * top.bm25) / level, abs=2e-3)

    def test_without_the_model_the_same_question_is_not_answered(self, gadgets):
        assert decide("when does my refund come", gadgets).action != "answer"

    def test_an_answer_passage_is_plain_text(self):
        passage = answer_passage("Q?", "See [the docs](https://x.io) and `run`:\n```\nmake\n```\n"
                                 "then *bold* &amp; done. " + "word " * 200)
        assert passage.startswith("Q? See the docs and run : then bold & done.")
        assert len(passage) <= len("Q? ") + PASSAGE_CHARS


class TestNotCoveredAgainstAThinEntry:
    """A ``not_covered`` question holds a question back when it is nearer than the top entry's
    nearest text. For an entry with few phrasings, its answer's sentences count as its texts."""

    BEYOND = "does my home insurance pay for water damage"
    SENTENCE = ("Water damage and cracked screens are not covered; repairs outside the warranty "
                "are quoted before any work starts.")
    ASKED = "is water damage covered"
    INSURANCE = "will home insurance pay for my water damage"

    class Encoder:
        """Fixed directions for the texts named; every other text at right angles to them."""

        def __init__(self, vectors: dict[str, tuple[float, ...]]) -> None:
            self.vectors = vectors
            self.seen: list[str] = []

        def encode(self, texts, batch_size: int = 32):
            self.seen.extend(texts)
            rows = np.array([self.vectors.get(t, (0.0, 0.0, 0.0, 1.0)) for t in texts],
                            dtype=np.float32)
            return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def _kb(self, text: str):
        kb = parse_knowledge(text, "gadgets.yaml")
        warranty = kb.entry("warranty")
        encoder = self.Encoder({
            self.ASKED: (1.0, 0.0, 0.0, 0.0),
            self.BEYOND: (0.8, 0.6, 0.0, 0.0),  # cosine 0.8 with the question asked
            self.INSURANCE: (0.6, 0.8, 0.0, 0.0),  # 0.96 with BEYOND, 0.54 with the sentence
            warranty.question: (0.5, 0.0, 0.866, 0.0),  # 0.5
            answer_passage(warranty.question, warranty.answer): (0.6, 0.0, 0.8, 0.0),  # 0.6
            self.SENTENCE: (0.9, 0.0, 0.436, 0.0),  # 0.9
        })
        return attach(kb, encoder), encoder

    def test_a_sentence_of_the_answer_nearer_than_the_not_covered_question_answers(self):
        kb, encoder = self._kb(GADGETS + f"not_covered: [{self.BEYOND}]\n")
        assert self.SENTENCE in encoder.seen
        d = decide(self.ASKED, kb, explain=True)
        assert (d.action, d.entry.id) == ("answer", "warranty")
        assert d.explain.not_covered is None

    def test_a_question_nearer_the_not_covered_one_is_still_held_back(self):
        kb, _ = self._kb(GADGETS + f"not_covered: [{self.BEYOND}]\n")
        d = decide(self.INSURANCE, kb, explain=True)
        assert (d.action, d.reason) == ("ticket", "no_match")
        assert d.explain.not_covered == NotCovered(self.BEYOND, cosine=0.96, entry_cosine=0.54)

    def test_without_the_sentences_the_question_asked_was_held_back(self, monkeypatch):
        from bot import semantic

        monkeypatch.setattr(semantic, "_sentences_to_weigh", lambda kb: ([], []))
        kb, encoder = self._kb(GADGETS + f"not_covered: [{self.BEYOND}]\n")
        assert self.SENTENCE not in encoder.seen
        d = decide(self.ASKED, kb, explain=True)
        assert (d.action, d.reason) == ("ticket", "no_match")
        assert d.explain.not_covered == NotCovered(self.BEYOND, cosine=0.8, entry_cosine=0.6)

    def test_answers_are_read_sentence_by_sentence_where_the_blend_may_decide(self):
        _, encoder = self._kb(GADGETS)  # no thresholds: the blend decides every question
        assert self.SENTENCE in encoder.seen
        tuned = GADGETS.replace("handoff:", "thresholds: {answer: 60, clarify: 40}\nhandoff:")
        _, encoder = self._kb(re.sub(r"- id: (\w+)\n", r"- id: \1\n    phrasings: [\1 one, \1 two, "
                                     r"\1 three]\n", tuned))
        assert encoder.seen and self.SENTENCE not in encoder.seen  # no entry is thin
        kb, encoder = self._kb(TestThinEntries.KNOWN + f"not_covered: [{self.BEYOND}]\n")
        assert "warranty" not in kb.index.thin and "returns" in kb.index.thin
        assert self.SENTENCE in encoder.seen  # for the blend's ranking, every entry's
        # ... but against not_covered, only a thin entry's sentences count
        d = blend.decide_blend(self.ASKED, kb, explain=True)
        assert d.action == "ticket" and d.explain.not_covered.entry_cosine == 0.6

    def test_a_sentence_nearer_than_the_passage_adds_a_quarter_of_the_difference(
            self, gadgets, monkeypatch):
        firmware, warranty = gadgets.entry("firmware"), gadgets.entry("warranty")
        question = "what about power during the process"  # no word of any answer
        charged = "Keep the gadget charged above 50% and near your phone until it restarts."
        vectors = {question: (1.0, 0.0, 0.0, 0.0), charged: (0.8, 0.6, 0.0, 0.0),
                   answer_passage(warranty.question, warranty.answer): (0.15, 0.0, 0.9887, 0.0)}
        d = decide(question, attach(gadgets, self.Encoder(vectors)), explain=True)
        ranked = {r.entry: r.cosine for r in d.explain.blend.ranked}
        assert d.explain.blend.ranked[0].entry == "firmware"
        assert ranked["firmware"] == pytest.approx(blend.BLEND_SENTENCE * 0.8, abs=1e-3)
        assert ranked["warranty"] == pytest.approx(0.15, abs=1e-3)  # its sentences are further
        sentence = {r.entry: r.sentence for r in d.explain.blend.ranked}
        assert sentence["firmware"] == pytest.approx(0.8, abs=1e-3)
        assert d.explain.blend.sentence_weight == blend.BLEND_SENTENCE
        from bot import semantic

        monkeypatch.setattr(semantic, "_sentences_to_weigh", lambda kb: ([], []))
        d = decide(question, attach(gadgets, self.Encoder(vectors)), explain=True)
        assert d.explain.blend.ranked[0].entry == "warranty"
        assert firmware.id != d.explain.blend.ranked[0].entry

    def test_an_answer_splits_into_sentences_that_say_something(self):
        from bot.semantic import answer_sentences

        answer = ("Two years. Water damage and cracked screens are not\ncovered; ask us.\n\n"
                  "Steps:\n1. Open the **app** first.\n- Then tap [Install](https://x.io) now!")
        assert answer_sentences(answer) == [
            "Water damage and cracked screens are not covered; ask us.",
            "Open the app first.", "Then tap Install now!"]


class TestThinEntries:
    """In tuned knowledge, an entry with few phrasings (one just added) is judged by the blend:
    the tuned matcher has too little to go on."""

    TUNED = GADGETS.replace("handoff:", "thresholds: {answer: 60, clarify: 40, margin: 6}\nhandoff:") \
        .replace("    question: How long does delivery take?\n",
                 "    question: How long does delivery take?\n"
                 "    phrasings: [when will my order arrive, delivery time, shipping eta,\n"
                 "                how many days to ship]\n")

    def test_the_blend_answers_with_a_thin_entry(self):
        kb = parse_knowledge(self.TUNED, "tuned.yaml")
        assert kb.thresholds.tuned and "returns" in kb.index.thin and "shipping" not in kb.index.thin
        question = "print a prepaid label for my parcel"
        assert decide_tuned(question, kb).action != "answer"
        d = decide(question, kb, explain=True)
        assert (d.action, d.entry.id) == ("answer", "returns")
        assert d.explain.thin == "returns"

    # the same, with firmware and warranty known by their phrasings too: only returns and
    # bulk are thin
    KNOWN = TUNED.replace("    question: How do I update the firmware?\n",
                          "    question: How do I update the firmware?\n"
                          "    phrasings: [new firmware version, upgrade the software,\n"
                          "                install an update, firmware update fails]\n") \
        .replace("    question: What does the warranty cover?\n",
                 "    question: What does the warranty cover?\n"
                 "    phrasings: [is it under warranty, warranty length,\n"
                 "                what is covered by the guarantee, broken screen repair]\n")

    def test_a_thin_entry_offered_ahead_of_known_ones_is_the_answer(self):
        """The blend would only offer returns; the entries behind it are known to the tuned
        matcher by their phrasings, and it answered with none of them."""
        kb = parse_knowledge(self.KNOWN, "tuned.yaml")
        assert kb.index.thin == {"returns", "bulk"}
        question = "post office parcel"
        offered, runner_up = blend.blend_ranked(question, kb, explain=False)
        assert (offered.action, [c.entry_id for c in offered.candidates]) == ("clarify", ["returns"])
        assert runner_up == "shipping" and decide_tuned(question, kb).action == "ticket"
        d = decide(question, kb, explain=True)
        assert (d.action, d.entry.id) == ("answer", "returns")
        assert d.explain.thin == "returns"

    def test_behind_another_thin_entry_the_tuned_decision_stands(self):
        """Shipping without its phrasings: nothing tells returns and it apart."""
        kb = parse_knowledge(self.KNOWN.replace(
            "    phrasings: [when will my order arrive, delivery time, shipping eta,\n"
            "                how many days to ship]\n", ""), "tuned.yaml")
        assert {"returns", "shipping"} <= kb.index.thin
        question = "post office parcel"
        assert blend.blend_ranked(question, kb, explain=False)[1] == "shipping"
        assert decide(question, kb) == decide_tuned(question, kb)

    def test_an_entry_with_phrasings_is_left_to_the_tuned_matcher(self):
        kb = parse_knowledge(self.TUNED, "tuned.yaml")
        question = "tracking number by email"  # the blend would answer with shipping
        assert decide(question, kb) == decide_tuned(question, kb)


def test_a_sweep_explores_thresholds_a_maintainer_could_set():
    """`kb eval --sweep` on knowledge without thresholds shows the tuned matcher at each
    setting it could be given (the blend has no thresholds to move)."""
    import yaml

    from bot.evaluation import answer_steps, with_thresholds

    doc = yaml.safe_load(GADGETS)
    for entry in doc["entries"]:  # enough phrasings that no entry is thin
        entry["phrasings"] = [f"{entry['id']} question {n}" for n in range(THIN)]
    kb = parse_knowledge(yaml.safe_dump(doc), "gadgets.yaml")
    variants = answer_steps(kb.thresholds, (-40, 0, 30))
    assert all(v.tuned for v in variants) and not kb.thresholds.tuned
    decisions = [decide("how do i install the new firmware version", with_thresholds(kb, v),
                        explain=True) for v in variants]
    assert all(d.explain.blend is None for d in decisions)
    assert decisions[0].action == "answer" and decisions[-1].action != "answer"
