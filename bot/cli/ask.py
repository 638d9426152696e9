"""``faqbot ask``: the decision the Slack app would make, for a question or each stdin line
(``--json``: one object per question; ``--explain``: why)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.cli.common import add_knowledge_option, load_kb, one_line, terminal_mrkdwn

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
    if explain and decision.explain.get("verbatim"):
        which = (f"one of {decision.entry.id}'s phrasings (its question included)"
                 if decision.entry else "one of the not_covered questions")
        print(f"\nasked exactly as {which}: decided by that alone; the scores follow")
    if explain and "blend" in decision.explain:
        print_blend(decision.explain)
    elif explain:
        ex = decision.explain
        print("\nwhy:")
        print(f"  reading:   {ex.get('reading', '')!r}")
        known = ", ".join(f"{t} (weight {ex['weights'][t]}, credit {c})"
                          for t, c in ex.get("known", {}).items())
        print(f"  counted:   {known or '-'}")
        fixed = ", ".join(f"{a}→{b}" for a, b in ex.get("corrected", {}).items())
        print(f"  typos:     {fixed or '-'}")
        print(f"  ignored:   {', '.join(ex.get('common', [])) or '-'} (everyday words)")
        print(f"  unknown:   {', '.join(ex.get('unknown', [])) or '-'} (count against a match)")
        if "semantic" in ex:
            sem = ex["semantic"]
            which = ("an unfamiliar word: semantic.answer" if ex.get("unknown")
                     else "all words known: semantic.familiar")
            w = sem["weight"]
            print(f"  confidence {ex['confidence']} = {1 - w:g} × lexical {sem['lexical']} "
                  f"(top score × √share, share {ex['share']}) + {w:g} × 100 × cosine "
                  f"{sem['cosine']} (semantic model); answers at ≥ {ex['answer_at']:g} ({which})")
            if sem.get("read_as"):
                print(f"  the model read: {sem['read_as']!r} (typos as corrected)")
        elif "confidence" in ex:
            which = "an unfamiliar word: answer" if ex.get("unknown") else "all words known: familiar"
            print(f"  confidence {ex['confidence']} (top score × √share, share {ex['share']}); "
                  f"answers at ≥ {ex['answer_at']:g} ({which})")
        top = ex["ranked"][0]["entry"] if ex.get("ranked") else "the top entry"
        if ex.get("asks"):
            print(f"  not answered: asks {' / '.join(repr(a) for a in ex['asks'])}, which no "
                  f"phrasing of {top} asks (a number it does not give)")
        if ex.get("not_covered"):
            nc = ex["not_covered"]
            if "cosine" in nc:
                print(f"  not answered: nearer to not_covered {nc['question']!r} (cosine "
                      f"{nc['cosine']}) than to any phrasing of {top} ({nc['entry_cosine']})")
            else:
                print(f"  not answered: the not_covered questions score {nc['score']} (via "
                      f"{nc['question']!r}), {top} {nc['entry_score']}")
        for row in ex.get("ranked", []):
            print(
                f"  {row['score']:5.1f} {row['entry']:<18} entry-coverage {row['entry_coverage']}"
                f"  phrasing-F {row['phrasing_f']}  chars {row['chars']}  pairs {row['pairs']}"
                f"  via {row['phrasing']!r}"
            )


def print_blend(ex: dict) -> None:
    """``ask --explain`` for knowledge decided by the calibrated blend (no tuned thresholds)."""
    blend = ex["blend"]
    print("\nwhy (calibrated blend: this knowledge sets no thresholds):")
    fixed = " (typos as corrected)" if blend["corrected"] else ""
    print(f"  reading:   {ex.get('reading', '')!r}{fixed}")
    rest = f" + {blend['lexical_weight']:g} × lexical/100 (no semantic model)"
    if blend["model"]:
        print(f"  score = (cosine(question, question + answer) + {blend['bm25_weight']:g} × BM25)"
              f" / {blend['level']:g}, this FAQ's own level (its questions against their answers)")
        if "sentence_weight" in blend:
            print(f"  cosine: with the answer's opening, + {blend['sentence_weight']:g} × how much "
                  "nearer its nearest sentence is")
    else:
        print(f"  score = {blend['bm25_weight']:g} × BM25{rest}")
    print(f"  shown so that {blend['answer_at']:g} answers (with a lead of {blend['margin']:g}); "
          f"did-you-mean from {blend['clarify_at']:g}")
    if ex.get("thin"):
        print(f"  {ex['thin']} has few phrasings: the blend decides for it")
    if ex.get("not_covered"):
        nc = ex["not_covered"]
        print(f"  not answered: nearer to not_covered {nc['question']!r} (cosine {nc['cosine']}) "
              f"than to the top entry ({nc['entry_cosine']})")
    for row in ex.get("ranked", []):
        parts = "".join(f"  {k} {row[k]}" for k in ("cosine", "sentence", "bm25", "lexical")
                        if k in row)
        print(f"  {row['score']:5.1f} {row['entry']:<18} blend {row['blend']}{parts}")


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
