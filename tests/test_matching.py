"""Decisions on the bundled App Review FAQ, and the matcher's techniques one by one."""

from __future__ import annotations

import time

import pytest

from bot.knowledge import NOT_COVERED_ID
from bot.matching import Vocabulary, decide, rank
from bot.matching.explain import ModelWord, NotCovered


class TestBundledDecisions:
    def test_every_canonical_question_answers_itself(self, bundled_kb):
        """Asking an entry's own question answers with that entry (or tickets, for the cap)."""
        for entry in bundled_kb:
            d = decide(entry.question, bundled_kb)
            assert d.entry is not None and d.entry.id == entry.id, (entry.id, d)
            assert d.action == ("ticket" if entry.ticket else "answer")

    @pytest.mark.parametrize(
        ("question", "entry"),
        [
            ("how long until my app is reviewed?", "review-time"),
            ("is react native supported", "react-native"),
            ("can i get a never-expiring access token", "token-length"),
            ("why are the videos we upload only visible to the creator", "private-posts"),
            ("which api is for running ad campaigns", "marketing-ads"),
        ],
    )
    def test_plain_paraphrases_are_answered(self, bundled_kb, question, entry):
        """Ordinary rewordings of FAQ questions are answered with the right entry."""
        d = decide(question, bundled_kb)
        assert (d.action, d.entry.id if d.entry else None) == ("answer", entry), d.explain

    @pytest.mark.parametrize(
        "question",
        [
            "we need more than 5k users, can you raise our limit?",
            "raise our user limit please",
            "hit the active user cap, how do we increase it",
        ],
    )
    def test_cap_increase_requests_open_a_ticket_and_answer(self, bundled_kb, question):
        """Any phrasing of a cap increase opens a cap_increase ticket and answers with the entry."""
        d = decide(question, bundled_kb)
        assert (d.action, d.reason) == ("ticket", "cap_increase")
        assert d.entry is not None and d.entry.id == "cap"

    @pytest.mark.parametrize(
        "question",
        ["anyone up for lunch?", "how do I rebase a git branch", "lol", "", "   ", ":tada:",
         "<@U123> <!channel>"],
    )
    def test_unrelated_messages_open_no_match_tickets(self, bundled_kb, question):
        """Chat that has nothing to do with the FAQ is not answered."""
        d = decide(question, bundled_kb)
        assert (d.action, d.reason) == ("ticket", "no_match")

    @pytest.mark.parametrize("greeting", ["good morning team ☀️", "hi all", "hey team!",
                                          "thanks team", "good afternoon everyone"])
    def test_greetings_alone_are_not_answered(self, bundled_kb, greeting):
        """Salutations carry no topic, even when the knowledge uses their words ("team")."""
        d = decide(greeting, bundled_kb)
        assert (d.action, d.reason) == ("ticket", "no_match"), d

    def test_greetings_around_a_question_do_not_change_it(self, bundled_kb):
        """A question wrapped in a greeting and a sign-off is decided as the bare question."""
        bare = decide("how long does the app review take?", bundled_kb)
        wrapped = decide("Good morning team! how long does the app review take? thanks a lot",
                         bundled_kb)
        assert (wrapped.action, wrapped.entry) == (bare.action, bare.entry)
        assert abs(wrapped.score - bare.score) < 1e-9

    def test_asking_for_a_person_is_a_requested_ticket(self, bundled_kb):
        """An explicit ask for a human becomes a ticket with reason requested."""
        d = decide("can I talk to a human please", bundled_kb)
        assert (d.action, d.reason) == ("ticket", "requested")

    def test_very_long_input_is_decided_in_bounded_time(self, bundled_kb):
        """A 40,000-character message is decided quickly (input is cut before work)."""
        text = ("how long does the app review take? " + "lorem ipsum dolor sit amet " * 2000)[:40000]
        started = time.perf_counter()
        d = decide(text, bundled_kb)
        assert time.perf_counter() - started < 1.0
        assert d.action in ("answer", "clarify", "ticket")

    def test_slack_markup_does_not_change_the_decision(self, bundled_kb):
        """Mentions, emoji, links and formatting are ignored by the matcher."""
        plain = decide("how long does app review take", bundled_kb)
        marked = decide("<@U0BOT42> *how long* does app review take?? :eyes: <!here>", bundled_kb)
        assert (plain.action, plain.entry) == (marked.action, marked.entry)


class TestTechniques:
    def test_typos_are_corrected_against_the_knowledge(self, small_kb):
        """A misspelt word counts as the known word it is one edit away from."""
        _, analysis, _ = rank("how lnog is the reveiw", small_kb)
        assert analysis.corrected == {"lnog": "long", "reveiw": "review"}

    def test_synonym_groups_fold_words_and_phrases(self):
        """Synonyms, single words and phrases, become one canonical term."""
        vocab = Vocabulary.build([["rejected", "declined", "denied"], ["react native", "rn"]])
        assert vocab.terms("app declined") == vocab.terms("app rejected")
        assert vocab.terms("is RN ok") == vocab.terms("is react native ok")

    def test_synonym_phrases_match_inflected_words(self):
        """A phrase matches on stems, as single words do: "signed off", "turning us down"."""
        vocab = Vocabulary.build([["approved", "sign off"], ["rejected", "turned down"]])
        assert vocab.terms("app signed off") == vocab.terms("app approved")
        assert vocab.terms("they keep turning down our app") == vocab.terms("they keep rejected our app")
        assert vocab.starts_phrase("signing") and not vocab.starts_phrase("app")

    def test_words_the_knowledge_never_uses_count_against(self, small_kb):
        """The same known words score lower next to an unknown content word."""
        clean = rank("how long is the review", small_kb)[0][0].score
        off = rank("how long is the refund review", small_kb)[0][0].score
        assert off < clean

    def test_everyday_words_are_neutral(self, small_kb):
        """Filler like 'usually' or 'wondering' neither helps nor hurts."""
        base = rank("how long is the review", small_kb)[0][0].score
        chatty = rank("wondering how long is the review usually", small_kb)[0][0].score
        assert abs(base - chatty) < 8

    def test_rare_words_weigh_more_than_shared_ones(self, small_kb):
        """A word used by one entry outweighs a word all entries use."""
        w = small_kb.index.weight
        assert w["review"] > w.get("app", 0)

    def test_question_sentence_is_found_in_a_long_message(self, small_kb):
        """Context sentences around the question do not drown it."""
        message = (
            "Hi team, hope you're all well. We shipped our build to the store last week and our "
            "PM keeps asking me for dates. How long is the review? Thanks so much in advance."
        )
        d = decide(message, small_kb)
        assert d.entry is not None and d.entry.id == "review-time"

    @pytest.mark.parametrize(("message", "entry"), [
        ("Our promo team wants to automate advertising on TikTok. Can that be done with the "
         "developer tools?", "marketing-ads"),
        ("Our app got turned down by the reviewers last night. What steps should we take to get "
         "it approved this time?", "not-approved"),
        ("we want to know exactly which permissions exist before we submit. is there a doc that "
         "lists them?", "scopes"),
    ])
    def test_a_sentence_alone_does_not_overrule_its_context(self, bundled_kb, message, entry):
        """The asking sentence alone ("can that be done with the developer tools?") fits
        another entry better than the whole message does; it may sharpen the whole message's
        leading entry, never replace it."""
        d = decide(message, bundled_kb)
        assert (d.action, d.entry.id if d.entry else None) == ("answer", entry), d.explain


class TestQualityTechniques:
    """The techniques of the "answer quality" work, each on real FAQ questions."""

    def test_everyday_words_are_not_corrected_into_faq_words(self, bundled_kb):
        """'lunch' is a word of its own, not a typo of 'launch': it stays unknown."""
        _, analysis, _ = rank("anyone up for lunch?", bundled_kb)
        assert analysis.corrected == {}
        assert "lunch" in analysis.unknown

    def test_four_letter_words_are_corrected_only_for_swapped_letters(self, bundled_kb):
        """'shop' is not 'show', but a swapped pair in a short word ('tokne') is still a typo."""
        index = bundled_kb.index
        assert index.correct("shop") is None
        assert index.correct("fund") is None
        assert index.correct("tokne") is not None and index.correct("tokne")[0] == "token"

    def test_typos_of_everyday_words_are_neutral(self, bundled_kb):
        """'hw' (how) and 'tak' (take) neither help nor hurt; 'approvl' is corrected."""
        d = decide("hw long does approvl usually tak", bundled_kb, explain=True)
        assert d.explain.tuned.words.unknown == []
        assert {"hw", "tak"} <= set(d.explain.tuned.words.common)
        assert d.explain.tuned.words.corrected.get("approvl") == "approv"
        assert (d.action, d.entry.id if d.entry else None) == ("answer", "review-time")

    def test_corrections_do_not_depend_on_the_hash_seed(self, bundled_kb):
        """Ties between equally close known terms are broken the same way in every process."""
        import os
        import subprocess
        import sys

        code = (
            "from bot.knowledge import load_knowledge;"
            "kb = load_knowledge('knowledge/faq.yaml');"
            "print(sorted((w, kb.index.correct(w)) for w in "
            "['reveiw', 'sumbit', 'tokn', 'platfrom', 'aproval', 'mokup', 'scpoes']))"
        )
        outs = {
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONHASHSEED": seed},
            ).stdout
            for seed in ("1", "2", "3")
        }
        assert len(outs) == 1

    def test_a_distinctive_phrase_outweighs_unfamiliar_words(self, bundled_kb):
        """'react native' answers even next to words of another topic."""
        d = decide("react native support for the share to tiktok feature?", bundled_kb)
        assert (d.action, d.entry.id if d.entry else None) == ("answer", "react-native")

    def test_synonyms_and_jargon_of_the_knowledge_file(self, bundled_kb):
        """Abbreviations and API jargon from the knowledge's synonym groups."""
        for question, entry in [
            ("what's the max ttl on an access_token", "token-length"),
            ("which callback url do we register for a web app with login kit", "app-store"),
        ]:
            d = decide(question, bundled_kb)
            assert d.entry is not None and d.entry.id == entry, (question, d.explain)

    def test_contractions_and_chat_words_are_not_unknown(self, bundled_kb):
        """"we'd", "quick q" and "love to" are how people write, not another topic: no word
        counts against the match, and the question is answered."""
        d = decide("we'd love to know how long the review takes, quick q", bundled_kb,
                   explain=True)
        assert d.explain.tuned.words.unknown == []
        assert (d.action, d.entry.id if d.entry else None) == ("answer", "review-time")

    def test_numbers_and_slack_words_are_neutral(self, bundled_kb):
        """A number ("12 days") or a Slack word ("channel") says nothing about the topic: it
        neither counts for an entry nor against it."""
        d = decide("we submitted 12 days ago, still in review, is that normal?", bundled_kb,
                   explain=True)
        assert d.explain.tuned.words.unknown == [] and "12" in d.explain.tuned.words.common
        assert (d.action, d.entry.id if d.entry else None) == ("answer", "review-time")
        d = decide("which channel do we use to get support for a bug in production", bundled_kb,
                   explain=True)
        assert d.explain.tuned.words.unknown == []
        assert (d.action, d.entry.id if d.entry else None) == ("answer", "prod-support")

    @pytest.mark.parametrize("question", [
        "we pushed the app for review a second time, how long now?",
        "do we submit each app separately for review?",
        "login kit fails intermittently in production, where do we get support",
        "realistically, what's the longest a review round takes by default",
        "my mgr wants to pitch the rewrite on our roadmap: how long is review",
        "nobody else can see the videos our app posts",
    ])
    def test_everyday_qualifiers_are_neutral(self, bundled_kb, question):
        """Ordinals, "separately", "intermittently", "pushed": everyday English, not a topic."""
        _, analysis, _ = rank(question, bundled_kb)
        assert analysis.unknown == [], analysis.unknown

    def test_an_everyday_word_the_knowledge_uses_is_not_distinctive(self, bundled_kb):
        """One phrasing's "is it ok if…" must not make "ok" as distinctive as "react native":
        an everyday word weighs at most COMMON_WEIGHT_MAX, however few entries use it."""
        from bot.matching.index import COMMON_WEIGHT_MAX

        weight = bundled_kb.index.weight
        assert weight["ok"] <= COMMON_WEIGHT_MAX < weight["react_nativ"]
        d = decide("tiktok + react native ok?", bundled_kb)
        assert (d.action, d.entry.id if d.entry else None) == ("answer", "react-native")

    def test_a_typo_of_a_synonym_is_corrected_to_its_group(self, bundled_kb):
        """"permision" is one letter from "permission", a member of the scopes group."""
        _, analysis, _ = rank("which permisions can an app request", bundled_kb)
        assert analysis.corrected == {"permisions": "scope"} and analysis.unknown == []

    @pytest.mark.parametrize(("question", "typo", "entry"), [
        # a typo seldom stems like its word: "documentaton" keeps the ending "documentation"
        # loses, so it is read against the knowledge's words as written, before stemming
        ("where is the app review documentaton", "documentaton", "min-requirements"),
        ("how long is the revie", "revie", "review-time"),
        ("what scops can my app apply for", "scops", "scopes"),
        # a word of a synonym phrase: "react natve" still forms "react native"
        ("does tiktok support react natve", "natve", "react-native"),
    ])
    def test_typos_are_read_against_the_words_as_written(self, bundled_kb, question, typo, entry):
        d = decide(question, bundled_kb, explain=True)
        assert typo in d.explain.tuned.words.corrected, d.explain
        assert (d.action, d.entry.id if d.entry else None) == ("answer", entry), d.explain

    @pytest.mark.parametrize(("question", "joined", "read_as", "entry"), [
        ("how long does an accessToken last", "accesstoken", "access token", "token-length"),
        ("can i use loginkit in a webapp", "loginkit", "login kit", "app-store"),
        ("is the appreview slow", "appreview", "app review", "review-time"),
    ])
    def test_words_run_together_are_split(self, bundled_kb, question, joined, read_as, entry):
        """Two of the knowledge's words run together (a missing space, a camelCase identifier)
        are read as both, at a typo's credit."""
        d = decide(question, bundled_kb, explain=True)
        assert d.explain.tuned.words.corrected.get(joined) == read_as, d.explain
        assert (d.action, d.entry.id if d.entry else None) == ("answer", entry), d.explain

    def test_only_unknown_words_split_into_knowledge_words(self, bundled_kb):
        """A word the knowledge knows stays whole ("tiktok" is not "tik tok"); a word whose
        halves are not both the knowledge's content words stays unknown ("showcase");
        a synonym phrase run together counts as the phrase ("redirecturi")."""
        index = bundled_kb.index
        assert index.split("showcase") is None and index.split("download") is None
        _, analysis, _ = rank("does tiktok have a showcase", bundled_kb)
        assert analysis.corrected == {} and "showcas" in analysis.unknown
        assert index.split("redirecturi") == ("redirect", "uri")
        _, analysis, _ = rank("what goes in the redirecturi", bundled_kb)
        assert analysis.corrected == {"redirecturi": "redirect_uri"}

    def test_a_four_letter_typo_is_a_swap_or_a_dropped_letter(self, bundled_kb):
        """'tokn' and 'aply' lost a letter of 'token' and 'apply'; 'shop' is a word, not a
        typo of 'show' (a changed letter), and 'cost' is no typo of anything."""
        index = bundled_kb.index
        assert index.spell("tokn")[0] == "token" and index.spell("aply")[0] == "apply"
        assert index.spell("shop") is None and index.spell("cost") is None
        d = decide("how long does a user acess tokn last", bundled_kb, explain=True)
        assert (d.action, d.entry.id if d.entry else None) == ("answer", "token-length"), d.explain

    def test_the_sentences_that_ask_are_found_after_a_short_one(self):
        """A long message's readings are its sentences that ask ("?"), found by their own
        punctuation even when a short sentence before them ("Hi!") is left out."""
        from bot.matching.scoring import _readings

        message = ("Hi! We build a scheduling tool for creators and the launch is close. "
                   "Our release manager wants dates for everything. How long does app review take? "
                   "Thanks so much.")
        whole, *sentences = _readings(message)
        assert sentences == ["how long does app review take"]
        assert "scheduling tool" in whole

    def test_misspell_makes_one_plausible_typo(self):
        """evaluation.misspell: one edit in one word of 5+ letters, never the first letter,
        the same for the same seed; a question with no such word is kept."""
        from rapidfuzz.distance import DamerauLevenshtein

        from bot.evaluation import Case, misspell

        cases = [Case("how long does the review take", "review-time", 1),
                 Case("is rn ok", "react-native", 2)]
        copies = misspell(cases, 20)
        assert len(copies) == 40 and misspell(cases, 20) == copies
        assert misspell(cases, 20, seed=1) != copies
        for copy in copies[:20]:
            words = zip(cases[0].question.split(), copy.question.split(), strict=True)
            changed = [(a, b) for a, b in words if a != b]
            assert len(changed) == 1 and len(changed[0][0]) >= 5, copy
            (word, typo), = changed
            assert typo[0] == word[0] and DamerauLevenshtein.distance(word, typo) == 1
            assert (copy.expect, copy.number) == ("review-time", 1)
        assert set(copies[20:]) == {cases[1]}

    def test_a_phrase_with_a_typo_counts_at_the_typo_credit(self, bundled_kb):
        """The phrase a corrected word completes is credited as a typo, less than spelt right."""
        _, typo, _ = rank("is react natve supported", bundled_kb)
        _, clean, _ = rank("is react native supported", bundled_kb)
        assert clean.credit["react_nativ"] == 1.0
        assert 0.5 < typo.credit["react_nativ"] < 1.0
        assert typo.corrected == {"natve": "react_nativ"}

    def test_inflections_and_slang_of_the_synonym_groups(self, bundled_kb):
        """'reqs', 'greenlit' and 'textarea' are the FAQ's requirements, approval and text box:
        answered with confidence, not asked back."""
        for question, entry in [
            ("what are the reqs to pass app review", "min-requirements"),
            ("how long until our app is greenlit", "review-time"),
            ("what do I write in the textarea when submitting", "submit-text"),
            ("the review bounced our app, what now", "not-approved"),
            ("what is the procedure to get api access", "api-access"),
            ("prereqs for app submission", "min-requirements"),
            ("what should the blurb for the review say", "submit-text"),
            ("where do I file a bug about the api in production", "prod-support"),
            ("upper limit on how long a user token lasts", "token-length"),
        ]:
            d = decide(question, bundled_kb)
            assert (d.action, d.entry.id if d.entry else None) == ("answer", entry), d.explain
            assert d.score >= 65, (question, d.score)

    def test_confidence_falls_when_other_entries_explain_the_question_as_well(self, bundled_kb):
        """The calibrated score is the top score only when nobody else is close."""
        from bot.matching.tuned import _share, confidence

        assert _share([80.0, 20.0, 10.0]) > 0.99
        assert _share([60.0, 60.0, 60.0, 60.0]) == pytest.approx(0.25)
        assert confidence(80.0, _share([80.0, 20.0])) == pytest.approx(80.0, abs=0.1)
        assert confidence(60.0, _share([60.0, 60.0, 60.0, 60.0])) == pytest.approx(30.0)

    def test_decision_score_is_the_calibrated_confidence(self, bundled_kb):
        """`--explain` shows the confidence and share the decision used."""
        d = decide("is react native supported", bundled_kb, explain=True)
        assert d.score == pytest.approx(d.explain.tuned.confidence, abs=0.05)
        assert 0 < d.explain.tuned.share <= 1
        assert d.score <= d.candidates[0].score + 1e-9

    def test_clarify_offers_only_close_candidates(self, bundled_kb):
        """A clarification lists the entries within reach of the top one, the top one first."""
        from bot.matching.scoring import CLOSE

        d = decide("api access for my new app", bundled_kb, explain=True)
        assert d.action == "clarify" and len(d.candidates) >= 2
        top = d.candidates[0].score
        assert all(c.score >= top - CLOSE for c in d.candidates)
        ranked = d.explain.tuned.ranked
        assert [c.entry_id for c in d.candidates] == [r.entry for r in ranked[: len(d.candidates)]]
        # the next entry in the ranking is further than CLOSE from the top one: not offered
        assert ranked[len(d.candidates)].score < top - CLOSE

    def test_cap_requests_open_a_ticket_even_when_unsure(self, bundled_kb):
        """The cap entry files its request whenever it leads, even below the answer threshold."""
        d = decide("can you bump our active user cap, we keep hitting it with the new campaign",
                   bundled_kb)
        assert (d.action, d.reason) == ("ticket", "cap_increase")


class TestRoundTwo:
    def test_clarify_needs_evidence_for_two_entries(self, bundled_kb):
        """Asking back is for questions close to two or more entries: a question only one entry
        half-explains (an unrelated one, usually) becomes a no_match ticket, and every
        clarification offers at least two entries scoring at or above `clarify`."""
        th = bundled_kb.thresholds
        d = decide("how do I make my tiktok likes private", bundled_kb)
        assert (d.action, d.reason) == ("ticket", "no_match")
        for question in ["api access for my new app", "status of my approval",
                         "does my app get api access right after approval?"]:
            d = decide(question, bundled_kb)
            if d.action == "clarify":
                assert sum(c.score >= th.clarify for c in d.candidates) >= 2

    def test_general_everyday_words_are_neutral_but_domain_nouns_are_not(self, bundled_kb):
        """Everyday verbs, adjectives and time words the knowledge never uses are neither
        evidence nor unknown; domain nouns from other topics stay unknown."""
        _, analysis, _ = rank("honestly the review is weirdly slow since friday", bundled_kb)
        assert not analysis.unknown
        _, analysis, _ = rank("how long does a refund for the invoice take", bundled_kb)
        assert {"refund", "invoic"} <= set(analysis.unknown)

    def test_an_unknown_topic_beside_everyday_words_is_not_answered(self, bundled_kb):
        """When every known word is an everyday one ("how long does it take"), the unknown
        word is the question's topic and weighs in full: a refund is not an app review."""
        assert decide("how long does a refund take?", bundled_kb).action == "ticket"
        d = decide("how long does the review take?", bundled_kb)
        assert (d.action, d.entry.id) == ("answer", "review-time")
        off_topic = rank("how long does a refund take?", bundled_kb)[0][0]
        on_topic = rank("how long does the refund review take?", bundled_kb)[0][0]
        assert off_topic.entry_coverage < on_topic.entry_coverage

    def test_limited_ranking_keeps_the_head(self, bundled_kb):
        """`rank(..., limit=n)` returns the n best entries: the head of the ranking is
        exactly the full ranking's."""
        for question in ["how long is app review", "why are my posts private via the api",
                         "where do I report a bug in production, our RN app crashes"]:
            full = rank(question, bundled_kb)[0]
            head = rank(question, bundled_kb, limit=3)[0]
            assert [(s.entry, round(s.score, 6)) for s in head[:3]] == [
                (s.entry, round(s.score, 6)) for s in full[:3]
            ]

    def test_phrasing_mass_does_not_depend_on_set_order(self, bundled_kb):
        """Phrasing masses are summed in a fixed order, so ties between phrasings break the
        same way whatever the hash seed."""
        idx = bundled_kb.index
        for text, mass in zip(idx.phrasing_text[:50], idx.phrasing_mass[:50], strict=True):
            terms = set(idx.vocabulary.terms(text, normalized=True))
            assert mass == sum(idx.weight[t] for t in sorted(terms))


class TestFamiliarThreshold:
    """`thresholds.familiar`: a question made only of words the knowledge knows may be
    answered at a lower confidence than one with a word it has never seen."""

    @staticmethod
    def _kb(answer: float, familiar: float | None):
        from bot.knowledge import parse_knowledge
        from tests.conftest import SMALL_KB

        extra = "" if familiar is None else f", familiar: {familiar}"
        text = SMALL_KB.replace(
            "thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}",
            f"thresholds: {{answer: {answer}, clarify: 0, margin: 0, candidates: 3{extra}}}")
        return parse_knowledge(text, "kb.yaml")

    def test_all_known_words_answer_at_familiar(self, small_kb):
        """Below `answer` but at `familiar`, a question of known words is answered."""
        question = "when is the review done"
        d = decide(question, small_kb, explain=True)
        assert d.explain.tuned.words.unknown == [] and d.candidates[0].entry_id == "review-time"
        c = d.score
        strict = decide(question, self._kb(answer=c + 1, familiar=None))
        assert strict.action != "answer"
        loose = decide(question, self._kb(answer=c + 1, familiar=c - 1), explain=True)
        assert (loose.action, loose.entry.id) == ("answer", "review-time")
        assert loose.explain.tuned.answer_at == c - 1

    def test_an_unfamiliar_word_needs_the_answer_threshold(self, small_kb):
        """However low `familiar` is, a question with an unknown word needs `answer`."""
        question = "when is the review of my zebra done"
        d = decide(question, small_kb, explain=True)
        assert d.explain.tuned.words.unknown == ["zebra"]
        c = d.score
        kb = self._kb(answer=c + 1, familiar=0)
        got = decide(question, kb, explain=True)
        assert got.action != "answer" and got.explain.tuned.answer_at == c + 1


class TestQuantityQuestions:
    """A question that asks for a number ("how many", "how much") is answered only by an entry
    one of whose phrasings asks for one: the others are about its topic, not its question."""

    @pytest.mark.parametrize(
        ("text", "asks"),
        [
            ("How MANY requests per minute can my app make?", {"how many"}),
            ("how much does login kit cost", {"how much"}),
            ("is there a daily limit on how many videos a user can publish?", {"how many"}),
            ("how many days does review take", set()),  # a duration: "how long"
            ("how much time does the review need", set()),
            ("how many working days until approval", set()),
            ("how long is the review", set()),
            ("how do i see how manyy users logged in", set()),  # only the words themselves
        ],
    )
    def test_what_counts_as_asking_for_a_number(self, text, asks):
        from bot.matching import quantity_asks

        assert quantity_asks(text) == asks

    @pytest.mark.parametrize(
        ("question", "entry"),
        [
            ("how many requests per minute can my app make to the content posting api",
             "private-posts"),
            ("how many times can I resubmit my app after a rejection", "not-approved"),
        ],
    )
    def test_a_number_the_top_entry_never_gives_is_not_answered(self, bundled_kb, question,
                                                                  entry):
        """The entry leads on topic words (and would be answered without the check)."""
        d = decide(question, bundled_kb, explain=True)
        assert d.action != "answer", d.explain
        assert d.explain.tuned.ranked[0].entry == entry
        assert d.explain.tuned.asks == ("how many",)
        assert d.explain.tuned.confidence >= d.explain.tuned.answer_at  # only the check held it back

    def test_an_entry_whose_phrasings_ask_for_a_number_still_answers(self, bundled_kb):
        """The cap entry has "how many users…" phrasings; durations are never checked."""
        cap = decide("how many users can my app have, can you raise it?", bundled_kb, explain=True)
        assert (cap.action, cap.entry.id if cap.entry else None) == ("ticket", "cap")
        assert cap.explain.tuned.asks == ()
        days = decide("how many days does the app review take", bundled_kb, explain=True)
        assert (days.action, days.entry.id) == ("answer", "review-time")

    def test_the_knowledge_decides_which_entries_give_numbers(self, small_kb):
        """The same question is answered once a phrasing of the entry asks for a number."""
        from bot.knowledge import parse_knowledge
        from tests.conftest import SMALL_KB

        question = "how many apps are rejected"
        before = decide(question, small_kb, explain=True)
        assert before.action != "answer" and before.explain.tuned.asks == ("how many",)
        assert before.explain.tuned.confidence >= before.explain.tuned.answer_at
        text = SMALL_KB.replace("phrasings: [app rejected, why was my app declined]",
                                "phrasings: [app rejected, why was my app declined, "
                                "how many apps get rejected]")
        after = decide(question, parse_knowledge(text, "kb.yaml"), explain=True)
        assert (after.action, after.entry.id) == ("answer", "not-approved")
        assert after.explain.tuned.asks == ()


class TestCaches:
    def test_word_caches_skip_numbers_and_stay_bounded(self, small_kb, monkeypatch):
        """Per-word caches do not keep words with digits (each id is new), and stop growing
        at their limit, so a long-running worker's memory levels off."""
        from bot.matching import index as index_module
        from bot.matching import lexicon

        decide("review of app 1234567 and build v2beta99 please", small_kb)
        memo = small_kb.index.vocabulary._memo
        assert "review" in memo and "1234567" not in memo and "v2beta99" not in memo
        stems = lexicon._stem_word.cache_info().currsize
        assert lexicon._stem("1234567") == "1234567" and lexicon._stem("v2betas") == "v2beta"
        assert lexicon._stem_word.cache_info().currsize == stems
        monkeypatch.setattr(lexicon, "CACHE_LIMIT", len(memo) + 3)
        decide(" ".join(f"zzword{chr(97 + i)}{chr(97 + j)}" for i in range(5) for j in range(5)),
               small_kb)
        assert len(memo) == lexicon.CACHE_LIMIT
        typos = small_kb.index._typos
        monkeypatch.setattr(index_module, "CACHE_LIMIT", len(typos) + 2)
        decide(" ".join(f"yyword{chr(97 + i)}{chr(97 + j)}" for i in range(5) for j in range(5)),
               small_kb)
        assert len(typos) == index_module.CACHE_LIMIT
        index = small_kb.index
        for cache in (index._spelled, index._joined):
            monkeypatch.setattr(index_module, "CACHE_LIMIT", len(cache) + 2)
            decide(" ".join(f"xxword{chr(97 + i)}{chr(97 + j)}" for i in range(5) for j in range(5)),
                   small_kb)
            assert len(cache) == index_module.CACHE_LIMIT
        spelled = len(index._spelled)
        decide("x" * 31 + " " + "reviewtimes" * 40, small_kb)  # no word is that long
        assert len(index._spelled) == spelled


class TestVectorScoring:
    """Scores are computed for all entries at once (numpy over the inverted indexes)."""

    @staticmethod
    def _kb(first: str, second: str):
        from bot.knowledge import parse_knowledge

        return parse_knowledge(
            "entries:\n"
            f"  - {{id: sandbox, question: {first}, phrasings: [{second}], answer: A.}}\n"
            "  - {id: other, question: how do webhooks retry, answer: B.}\n",
            "kb.yaml",
        )

    @pytest.mark.parametrize("order", ["listed first", "listed second"])
    def test_phrasings_that_tie_on_words_keep_the_best_full_score(self, order):
        """Two phrasings with the same words fit the question equally; the one whose word
        order matches (shared word pairs) is the one scored, wherever it is listed."""
        same, shuffled = "refresh sandbox token", "token sandbox refresh"
        kb = self._kb(same, shuffled) if order == "listed first" else self._kb(shuffled, same)
        top = rank("refresh sandbox token", kb)[0][0]
        assert top.phrasing == same and top.pairs == 2


class TestNotCoveredWithoutTheModel:
    """Without the semantic model, the knowledge's `not_covered` questions are scored as one
    more, hidden entry: a question they explain at least as well as any entry is a ticket."""

    @staticmethod
    def _kb(not_covered: bool = True):
        from bot.knowledge import parse_knowledge
        from tests.conftest import SMALL_KB

        text = SMALL_KB.replace("handoff:", "not_covered:\n"
                                "  - how long does the apple app store review take\n"
                                "  - is there a flutter sdk\nhandoff:") if not_covered else SMALL_KB
        return parse_knowledge(text, "kb.yaml")

    def test_a_question_the_not_covered_ones_explain_best_is_a_ticket(self):
        question = "how long is the review at apple"
        plain = decide(question, self._kb(not_covered=False))
        assert (plain.action, plain.entry.id) == ("answer", "review-time")
        d = decide(question, self._kb(), explain=True)
        assert (d.action, d.entry, d.reason) == ("ticket", None, "no_match")
        held = d.explain.not_covered
        assert held.question == "how long does the apple app store review take"
        assert held.score >= held.entry_score > 0
        assert d.score >= d.explain.tuned.answer_at  # confident: held back by the rule alone
        # the hidden entry is never a candidate, nor ever answered
        assert all(c.entry_id != NOT_COVERED_ID for c in d.candidates)

    def test_questions_an_entry_explains_better_are_answered(self):
        kb = self._kb()
        for question, entry in (("how long is the review of our app", "review-time"),
                                ("review eta", "review-time"),
                                ("does login kit work with flutter", "react-native")):
            d = decide(question, kb, explain=True)
            assert (d.action, d.entry.id) == ("answer", entry), question
            assert d.explain.not_covered is None

    def test_the_hidden_entry_is_built_only_with_not_covered(self):
        assert self._kb(not_covered=False).beyond is None
        kb = self._kb()
        assert [e.id for e in kb.beyond][:-1] == [e.id for e in kb]
        hidden = kb.beyond.entries[-1]
        assert hidden.id == NOT_COVERED_ID and hidden.all_phrasings == kb.not_covered
        assert kb.get(NOT_COVERED_ID) is None and len(kb) == 4
        plain = self._kb(not_covered=False).knowledge
        assert plain.with_not_covered_entry().entries == plain.entries  # nothing to add


class TestVerbatim:
    """A question that is exactly one of an entry's phrasings (its question included), once
    normalised, is that entry's; exactly a `not_covered` question, a ticket."""

    GENERIC = """\
version: 1
title: Widget FAQ
entries:
  - id: what-is
    question: What is Widget?
    answer: Widget is a tool that syncs files between devices.
  - id: name
    question: Is it Widget or widget?
    answer: Widget is written with a capital W; widget is fine in commands.
  - id: devices
    question: Which devices does Widget run on?
    answer: Widget runs on Linux, macOS and Windows.
"""

    def test_an_entrys_own_question_is_answered_with_it(self):
        from bot.knowledge import parse_knowledge

        kb = parse_knowledge(self.GENERIC, "widget.yaml")
        for entry in kb:
            for asked in (entry.question, entry.question.upper().rstrip("?"), f"  {entry.question}  ",
                          f"Hi team, {entry.question} Thanks!", f"<@U0BOT> {entry.question}"):
                d = decide(asked, kb, explain=True)
                assert (d.action, d.entry) == ("answer", entry), asked
                assert d.candidates[0].entry_id == entry.id and d.score == 100.0
        assert decide("what is widget, and is it free?", kb).entry is not kb.entry("name")

    def test_a_cap_phrasing_files_its_request_and_not_covered_is_a_ticket(self):
        kb = TestNotCoveredWithoutTheModel._kb()
        cap = decide("Raise the user limit!", kb)
        assert (cap.action, cap.entry.id, cap.reason) == ("ticket", "cap", "cap_increase")
        d = decide("Is there a Flutter SDK?", kb, explain=True)
        assert (d.action, d.entry, d.reason) == ("ticket", None, "no_match")

    def test_handoff_stays_a_request(self):
        kb = TestNotCoveredWithoutTheModel._kb()
        assert decide("talk to a human", kb).reason == "requested"


class TestSemanticBlend:
    """With a semantic model attached and `semantic:` set, the confidence blends in the
    question's cosine with its top entry's phrasings. An encoder with fixed vectors stands in
    for the model (tests/test_semantic.py tests the real one)."""

    class Encoder:
        """Every text points one way, but the ``far`` ones, at right angles to it."""

        dim = 2

        def __init__(self, far: tuple[str, ...] = ()) -> None:
            self.far = far
            self.seen: list[str] = []

        def encode(self, texts, batch_size: int = 32):
            import numpy as np

            self.seen.extend(texts)
            return np.array([(0.0, 1.0) if t in self.far else (1.0, 0.0) for t in texts],
                            dtype=np.float32)

    @staticmethod
    def _kb(semantic: str | None, candidates: int = 3):
        from bot.knowledge import parse_knowledge
        from tests.conftest import SMALL_KB

        text = SMALL_KB.replace(
            "thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}",
            f"thresholds: {{answer: 60, clarify: 0, margin: 0, candidates: {candidates}}}"
            + (f"\nsemantic: {semantic}" if semantic else ""))
        return parse_knowledge(text, "kb.yaml")

    def test_a_close_meaning_lifts_an_unsure_question_over_the_threshold(self):
        from bot.semantic import attach

        question = "when is the review of my zebra done"
        lexical = decide(question, self._kb(None))
        assert lexical.action != "answer" and lexical.score < 60
        kb = attach(self._kb("{weight: 0.5, answer: 60, familiar: 70}"), self.Encoder())
        d = decide(question, kb, explain=True)
        assert (d.action, d.entry.id) == ("answer", "review-time")
        assert d.score == pytest.approx(0.5 * lexical.score + 50, abs=0.01)
        assert d.explain.tuned.semantic == ModelWord(round(lexical.score, 1), cosine=1.0,
                                                     weight=0.5, nearest="review-time")
        assert d.explain.tuned.answer_at == 60  # 'zebra' is unknown: semantic.answer applies

    def test_a_distant_meaning_holds_back_a_lexically_confident_answer(self):
        from bot.semantic import attach

        question = "how long does the app review process take these days"  # not the entry's own text
        lexical = decide(question, self._kb(None))
        assert (lexical.action, lexical.entry.id) == ("answer", "review-time")
        encoder = self.Encoder(far=(question,))
        kb = attach(self._kb("{weight: 0.5, answer: 60}"), encoder)
        d = decide(question, kb, explain=True)
        assert d.explain.tuned.semantic.cosine == 0.0
        assert d.action != "answer" and d.score == pytest.approx(0.5 * lexical.score, abs=0.01)
        assert d.explain.tuned.answer_at == 60  # familiar defaults to semantic.answer
        assert question in encoder.seen  # the question as asked, markup stripped

    def test_a_clarification_also_offers_the_entry_nearest_in_meaning(self):
        """Words split between two entries; the meaning points at a third: it is offered too,
        after the lexical candidates, and in place of the last one when the list is full."""
        from bot.semantic import attach

        question = "app review rejected"
        plain = self._kb("{weight: 0.5, answer: 60}")
        lexical = decide(question, plain)
        assert lexical.action == "clarify"
        assert [c.entry_id for c in lexical.candidates] == ["not-approved", "review-time"]
        meaning = (*plain.get("react-native").all_phrasings, question)
        d = decide(question, attach(plain, self.Encoder(far=meaning)), explain=True)
        assert d.action == "clarify" and d.explain.tuned.semantic.nearest == "react-native"
        assert [c.entry_id for c in d.candidates] == ["not-approved", "review-time",
                                                      "react-native"]
        two = self._kb("{weight: 0.5, answer: 60}", candidates=2)
        full = decide(question, attach(two, self.Encoder(far=meaning)))
        assert [c.entry_id for c in full.candidates] == ["not-approved", "react-native"]
        near = decide(question, attach(plain, self.Encoder(far=(
            *plain.get("review-time").all_phrasings, question))), explain=True)
        assert [c.entry_id for c in near.candidates] == ["not-approved", "review-time"]

    class Directions:
        """Fixed directions: each text listed points its own way, every other along x."""

        def __init__(self, vectors: dict[str, tuple[float, float, float]]) -> None:
            self.vectors = vectors

        def encode(self, texts, batch_size: int = 32):
            import numpy as np

            rows = np.array([self.vectors.get(t, (1.0, 0.0, 0.0)) for t in texts],
                            dtype=np.float32)
            return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def test_a_question_nearer_a_not_covered_one_is_not_answered(self):
        """The knowledge's `not_covered` questions: a question at least as near one of them as
        to any phrasing of its top entry is a ticket; one nearer the entry is answered."""
        from bot.knowledge import parse_knowledge
        from bot.semantic import attach
        from tests.conftest import SMALL_KB

        beyond = "how long does the apple app store review take"
        text = SMALL_KB.replace(
            "thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}",
            "thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}\n"
            f"semantic: {{weight: 0.3, answer: 50}}\nnot_covered: [{beyond}]")
        kb = parse_knowledge(text, "kb.yaml")
        assert kb.not_covered == (beyond,)
        other_store = "how long is the review at apple"
        ours = "how long is the review of our app"
        encoder = self.Directions({beyond: (0.0, 1.0, 0.0), other_store: (0.6, 0.8, 0.0),
                                   ours: (0.8, 0.6, 0.0)})
        attached = attach(kb, encoder)
        without = parse_knowledge(text.replace(f"\nnot_covered: [{beyond}]", ""), "kb.yaml")
        lexical = decide(other_store, without)
        assert (lexical.action, lexical.entry.id) == ("answer", "review-time")

        d = decide(other_store, attached, explain=True)
        assert (d.action, d.reason) == ("ticket", "no_match")
        assert d.explain.not_covered == NotCovered(beyond, cosine=0.8, entry_cosine=0.6)
        assert d.score >= d.explain.tuned.answer_at  # confident: held back by the rule alone

        d = decide(ours, attached, explain=True)
        assert (d.action, d.entry.id) == ("answer", "review-time")
        assert d.explain.not_covered is None
        # without `not_covered`, the same encoder answers the other store's question too
        assert decide(other_store, attach(without, encoder)).action == "answer"

    def test_the_nearest_phrasing_not_the_centroid_is_compared(self):
        """An entry whose phrasings point different ways is as near as its nearest phrasing."""
        from bot.knowledge import parse_knowledge
        from bot.semantic import attach
        from tests.conftest import SMALL_KB

        beyond = "is there a flutter sdk"
        text = SMALL_KB.replace(
            "thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}",
            "thresholds: {answer: 60, clarify: 40, margin: 6, candidates: 3}\n"
            f"semantic: {{weight: 0.3, answer: 50}}\nnot_covered: [{beyond}]")
        question = "does login kit work with react native apps"
        encoder = self.Directions({
            beyond: (0.0, 1.0, 0.0), question: (0.0, 0.6, 0.8),
            "does login kit work with react native": (0.0, 0.0, 1.0),  # the nearest phrasing
        })
        kb = attach(parse_knowledge(text, "kb.yaml"), encoder)
        near = kb.vectors.closeness(question)
        entry = [e.id for e in kb].index("react-native")
        assert near.phrasings[entry] == pytest.approx(0.8, abs=1e-6)
        assert near.entries[entry] < near.phrasings[entry]  # the centroid is further
        assert (near.not_covered, near.not_covered_cosine) == (0, pytest.approx(0.6, abs=1e-6))
        d = decide(question, kb, explain=True)
        assert d.explain.not_covered is None and d.entry is not None

    def test_the_model_serves_every_knowledge_file(self):
        from bot.semantic import attach

        kb = self._kb(None)
        attached = attach(kb, self.Encoder())
        assert attached.vectors is not None and kb.vectors is None  # a copy
        assert attached.vectors.centroids.shape == (len(kb), 2)
        assert attached.vectors.passages.shape == (len(kb), 2)  # one answer passage each
        with_settings = self._kb("{weight: 0.5, answer: 60}")
        assert attach(with_settings, None) is with_settings and with_settings.vectors is None

    def test_a_question_asked_again_is_not_encoded_again(self):
        from bot import semantic

        encoder = self.Encoder()
        kb = semantic.attach(self._kb("{weight: 0.5, answer: 60}"), encoder)
        encoder.seen.clear()
        first = decide("when is the review done", kb)
        again = decide("when is the review done", kb)
        assert encoder.seen == ["when is the review done"] and again.score == first.score
        for n in range(semantic.RECENT_QUESTIONS + 1):  # the oldest question is forgotten
            kb.vectors.cosines(f"question {n}")
        decide("when is the review done", kb)
        assert encoder.seen.count("when is the review done") == 2

