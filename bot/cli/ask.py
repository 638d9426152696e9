"""``faqbot ask``: the decision the Slack app would make, for a question or each stdin line
(``--json``: one object per question; ``--explain``: why)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from bot.cli.common import add_knowledge_option, load_kb, one_line, terminal_mrkdwn

if TYPE_CHECKING:
    from bot.matching.explain import Blend, Explanation, Tuned

__all__ = ["cmd_ask", "register"]


def print_decision(decision, *, explain: bool, batch: bool) -> None:
    from bot.matching import Decision

    assert isinstance(decision, Decision)
    entry = decision.entry.id if decision.entry else "-"
    head = f"{decision.action:<7} {entry:<20} score {decision.score:5.1f}"
    if decision.reason:
        head += f"  reason {decision.reason}"
    if batch:
        print(f"{head}  | {one_line(decision.question)}")
        return
    print(head)
    if decision.entry:
        print(f"\n  {decision.entry.question}\n")
        for line in terminal_mrkdwn(decision.entry.answer).splitlines():
            print(f"  {line}")
        print()
    if decision.candidates:
        print("candidates:")
        for c in decision.candidates:
            print(f"  {c.score:5.1f}  {c.entry_id:<20} {one_line(c.question)}")
    ex = decision.explain
    if not explain or ex is None:
        return
    if ex.verbatim:
        which = (f"one of {decision.entry.id}'s phrasings (its question included)"
                 if decision.entry else "one of the not_covered questions")
        print(f"\nasked exactly as {which}: decided by that alone; the scores follow")
    if ex.blend is not None:
        print_blend(ex, ex.blend)
    elif ex.tuned is not None:
        print_tuned(ex, ex.tuned)


def print_tuned(ex: Explanation, tuned: Tuned) -> None:
    """``ask --explain`` for knowledge decided by its own thresholds."""
    words = tuned.words
    print("\nwhy:")
    print(f"  reading:   {ex.reading!r}")
    known = ", ".join(f"{t} (weight {words.weights[t]}, credit {c})" for t, c in words.known.items())
    print(f"  counted:   {known or '-'}")
    fixed = ", ".join(f"{a}→{b}" for a, b in words.corrected.items())
    print(f"  typos:     {fixed or '-'}")
    print(f"  ignored:   {', '.join(words.common) or '-'} (everyday words)")
    print(f"  unknown:   {', '.join(words.unknown) or '-'} (count against a match)")
    sem = tuned.semantic
    if sem is not None:
        which = ("an unfamiliar word: semantic.answer" if words.unknown
                 else "all words known: semantic.familiar")
        w = sem.weight
        print(f"  confidence {tuned.confidence} = {1 - w:g} × lexical {sem.lexical} "
              f"(top score × √share, share {tuned.share}) + {w:g} × 100 × cosine "
              f"{sem.cosine} (semantic model); answers at ≥ {tuned.answer_at:g} ({which})")
        if sem.read_as:
            print(f"  the model read: {sem.read_as!r} (typos as corrected)")
        if sem.lead is not None:
            from bot.matching.tuned import MODEL_LEAD

            print(f"  model lead: cosine {sem.lead:+g} with {tuned.ranked[0].entry} over "
                  f"{tuned.ranked[1].entry} (≥ {MODEL_LEAD:g}: answers with a lead of words "
                  f"short of `margin`)")
    else:
        which = "an unfamiliar word: answer" if words.unknown else "all words known: familiar"
        print(f"  confidence {tuned.confidence} (top score × √share, share {tuned.share}); "
              f"answers at ≥ {tuned.answer_at:g} ({which})")
    top = tuned.ranked[0].entry if tuned.ranked else "the top entry"
    if tuned.asks:
        print(f"  not answered: asks {' / '.join(repr(a) for a in tuned.asks)}, which no "
              f"phrasing of {top} asks (a number it does not give)")
    nc = ex.not_covered
    if nc is not None and nc.cosine is not None:
        print(f"  not answered: nearer to not_covered {nc.question!r} (cosine "
              f"{nc.cosine}) than to any phrasing of {top} ({nc.entry_cosine})")
    elif nc is not None:
        print(f"  not answered: the not_covered questions score {nc.score} (via "
              f"{nc.question!r}), {top} {nc.entry_score}")
    for row in tuned.ranked:
        print(
            f"  {row.score:5.1f} {row.entry:<18} entry-coverage {row.entry_coverage}"
            f"  phrasing-F {row.phrasing_f}  chars {row.chars}  pairs {row.pairs}"
            f"  via {row.phrasing!r}"
        )


def print_blend(ex: Explanation, blend: Blend) -> None:
    """``ask --explain`` for knowledge decided by the calibrated blend (no tuned thresholds)."""
    print("\nwhy (calibrated blend: this knowledge sets no thresholds):")
    fixed = " (typos as corrected)" if blend.corrected else ""
    print(f"  reading:   {ex.reading!r}{fixed}")
    rest = f" + {blend.lexical_weight:g} × lexical/100 (no semantic model)"
    if blend.model:
        print(f"  score = (cosine(question, question + answer) + {blend.bm25_weight:g} × BM25)"
              f" / {blend.level:g}, this FAQ's own level (its questions against their answers)")
        if blend.sentence_weight is not None:
            print(f"  cosine: with the answer's opening, + {blend.sentence_weight:g} × how much "
                  "nearer its nearest sentence is")
    else:
        print(f"  score = {blend.bm25_weight:g} × BM25{rest}")
    print(f"  shown so that {blend.answer_at:g} answers (with a lead of {blend.margin:g}); "
          f"did-you-mean from {blend.clarify_at:g}")
    if ex.thin:
        print(f"  {ex.thin} has few phrasings: the blend decides for it")
    nc = ex.not_covered
    if nc is not None:
        print(f"  not answered: nearer to not_covered {nc.question!r} (cosine {nc.cosine}) "
              f"than to the top entry ({nc.entry_cosine})")
    for row in blend.ranked:
        parts = "".join(f"  {k} {v}" for k, v in (("cosine", row.cosine), ("sentence", row.sentence),
                                                   ("bm25", row.bm25), ("lexical", row.lexical))
                        if v is not None)
        print(f"  {row.score:5.1f} {row.entry:<18} blend {row.blend}{parts}")


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.matching import decide

    kb = load_kb(args)
    if args.question:
        questions = [" ".join(args.question)]
        batch = False
    else:
        questions = (line.rstrip("\n") for line in sys.stdin)
        batch = True
    for question in questions:
        if batch and not question.strip():
            continue
        decision = decide(question, kb, explain=args.explain)
        if args.json:
            print(json.dumps(decision.to_json(), ensure_ascii=False), flush=batch)
        else:
            print_decision(decision, explain=args.explain, batch=batch)
            if batch:
                sys.stdout.flush()
    return 0



def register(sub: Any) -> None:
    """Add ``ask`` to the ``faqbot`` subcommands."""
    ask = sub.add_parser("ask", help="print the decision for a question (or each stdin line)")
    ask.add_argument("question", nargs="*", help="the question; omit to read lines from stdin")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.add_argument("--explain", action="store_true", help="show why: words, weights, parts")
    add_knowledge_option(ask)
    ask.set_defaults(func=cmd_ask)
