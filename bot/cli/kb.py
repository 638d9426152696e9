"""``faqbot kb check|import|eval``: validate, import and measure a knowledge file
(``kb lint|gaps|stats`` are in :mod:`bot.cli.maintain`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from bot.cli import maintain
from bot.cli.common import (
    add_knowledge_option,
    load_kb,
    load_or_report,
    one_line,
    positive,
)
from bot.matching import Matcher

__all__ = ["cmd_kb_check", "cmd_kb_eval", "cmd_kb_import", "register"]


def cmd_kb_check(args: argparse.Namespace) -> int:
    path, kb = load_or_report(args)
    if kb is None:
        return 1
    phrasings = sum(len(e.all_phrasings) for e in kb)
    beyond = f", {len(kb.not_covered)} not_covered" if kb.not_covered else ""
    print(f"{path}: ok ({len(kb)} entries, {phrasings} phrasings{beyond})")
    return 0


def cmd_kb_import(args: argparse.Namespace) -> int:
    from bot.importer import parse_faq, render_yaml

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        parsed = parse_faq(text, fmt=args.format, filename=args.file, base_url=args.base_url)
    except ValueError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 1
    for note in parsed.notes:
        where = f"{args.file}:{note.line}" if note.line else args.file
        print(f"{where}: warning: {note.message}", file=sys.stderr)
    output = render_yaml(parsed, title=args.title, source=args.base_url)
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
        print(f"wrote {args.output} ({len(parsed.entries)} entries from {parsed.format})",
              file=sys.stderr)
    else:
        sys.stdout.write(output)
    return 0


def _parse_range(text: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"(\d+)?-(\d+)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a range like 1-120 or 121-, got {text!r}")
    low = int(match.group(1) or 1)
    high = int(match.group(2)) if match.group(2) else None
    return low, high


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}%" if isinstance(value, float) else str(value)


_FIGURES = (
    ("in_scope_top1", "in-scope top-1 (ranked first)"),
    ("in_scope_right", "in-scope answered right"),
    ("in_scope_clarify", "in-scope: clarify"),
    ("in_scope_ticket", "in-scope: ticket (missed)"),
    ("clarify_hit", "clarify: right entry offered"),
    ("oos_not_answered", "out-of-scope not answered"),
    ("oos_ticket", "out-of-scope -> ticket"),
    ("wrong", "confidently wrong (of all)"),
    ("cap_ticket", "cap increase -> ticket"),
)



def _print_sweep(parts: list[tuple[str, list]], kb: Matcher, moving: str,
                 variants: list) -> None:
    """One sweep table: a row per thresholds variant, figures per part of the cases."""
    from bot.evaluation import sweep, with_thresholds

    # With the semantic model, semantic.answer/familiar decide (and move by the same steps)
    semantic = kb.semantic is not None and kb.vectors is not None
    if semantic:
        moving = f"semantic.{moving}"
    print(f"moving `{moving}`:")
    print(f"{'answer':>6} {'famil.':>6} {'clarify':>7} | " + " | ".join(
        f"{label}: right  clar  tick  wrong  oos-ok" for label, _ in parts))
    results = [sweep(subset, kb, variants) for _, subset in parts]
    for i, th in enumerate(variants):
        cells = []
        for rows in results:
            f = rows[i][1]
            cells.append(
                f"{' ' * len(parts[0][0])}  {_fmt(f['in_scope_right']):>6} "
                f"{_fmt(f['in_scope_clarify']):>5} {_fmt(f['in_scope_ticket']):>5} "
                f"{_fmt(f['wrong']):>5} {_fmt(f['oos_not_answered']):>6}"
            )
        sem = with_thresholds(kb, th).semantic if semantic else None
        answer, familiar = (sem.answer, sem.familiar) if sem else (th.answer, th.answer_familiar)
        print(f"{answer:6.1f} {familiar:6.1f} {th.clarify:7.1f} | " + " | ".join(cells))


def cmd_kb_eval(args: argparse.Namespace) -> int:
    from bot.evaluation import answer_steps, evaluate, familiar_steps, misspell, parse_cases

    kb = load_kb(args)
    cases = parse_cases(Path(args.cases).read_text(encoding="utf-8"), args.cases)
    count = len(cases)
    if args.typos:
        cases = misspell(cases, args.typos)
    parts: list[tuple[str, list]] = []
    ranges = args.range or []
    if args.split:
        ranges = [(1, args.split), (args.split + 1, None)]
    for low, high in ranges:
        label = f"{low}-{high if high else count}"
        parts.append((label, [c for c in cases if c.number >= low and (high is None or c.number <= high)]))
    if not parts:
        parts = [(f"1-{count}", cases)]

    if args.sweep:
        th = kb.thresholds
        _print_sweep(parts, kb, "answer", answer_steps(th, range(-20, 21, 4)))
        print()
        _print_sweep(parts, kb, "familiar", familiar_steps(th, range(-12, 13, 2)))
        return 0

    reports = [(label, evaluate(subset, kb)) for label, subset in parts]
    failed = []
    if args.json:
        for label, report in reports:
            print(json.dumps({"cases": label, **report.figures()}))
    else:
        header = f"{'':32}" + "".join(f"{label:>12}" for label, _ in reports)
        print(f"knowledge {kb.path} ({len(kb)} entries) on {args.cases}")
        print(header)
        counts = [r.figures() for _, r in reports]
        print(f"{'questions (in/out/cap)':32}" + "".join(
            f"{c['in_scope']}/{c['out_of_scope']}/{c['cap']:>3}".rjust(12) for c in counts))
        for key, label in _FIGURES:
            print(f"{label:32}" + "".join(f"{_fmt(c[key]):>12}" for c in counts))
        if not args.quiet:
            for label, report in reports:
                misses = report.misses
                if misses:
                    print(f"\nmisses in {label} ({len(misses)}):")
                for o in misses:
                    d = o.decision
                    got = d.entry.id if d.entry else ",".join(c.entry_id for c in d.candidates[:3])
                    print(f"  #{o.case.number:<4} {o.kind:<12} want {o.case.expect:<17} got "
                          f"{d.action} {got} ({d.score:.0f})  {one_line(o.case.question, 70)}")
    for label, report in reports:
        f = report.figures()
        if args.min_accuracy is not None and (f["in_scope_right"] or 0) < args.min_accuracy:
            failed.append(f"{label}: in-scope accuracy {_fmt(f['in_scope_right'])} "
                          f"< {args.min_accuracy}%")
        if args.max_wrong is not None and (f["wrong"] or 0) > args.max_wrong:
            failed.append(f"{label}: wrong answers {_fmt(f['wrong'])} > {args.max_wrong}%")
    for line in failed:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failed else 0



def register(sub: Any) -> None:
    """Add ``kb`` and its subcommands to the ``faqbot`` subcommands."""
    kb = sub.add_parser("kb", help="maintain the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND", required=True)

    check = kb_sub.add_parser("check", help="validate a knowledge file (PATH:LINE: message)")
    check.add_argument("path", nargs="?", help="knowledge YAML (default: the configured one)")
    add_knowledge_option(check)
    check.set_defaults(func=cmd_kb_check)

    imp = kb_sub.add_parser("import", help="build knowledge YAML from an FAQ document")
    imp.add_argument("file", help="the FAQ: Markdown, reStructuredText, an HTML page or plain text")
    imp.add_argument("-o", "--output", help="write here instead of standard output")
    imp.add_argument("--title", help="title of the knowledge base")
    imp.add_argument("--format", choices=("markdown", "rst", "html", "text"),
                     help="the FAQ's format (default: by extension, else by content)")
    imp.add_argument("--base-url", metavar="URL",
                     help="where the FAQ is published: relative links resolve against it "
                          "(without it they become their text)")
    add_knowledge_option(imp)
    imp.set_defaults(func=cmd_kb_import)

    ev = kb_sub.add_parser("eval", help="accuracy on a YAML file of labelled questions")
    ev.add_argument("cases", help="YAML list of {q: question, expect: entry-id | none | cap}")
    ev.add_argument("--range", action="append", type=_parse_range, metavar="A-B",
                    help="only cases A to B (1-based; repeat for several parts)")
    ev.add_argument("--split", type=int, metavar="N", help="report cases 1-N and N+1- apart")
    ev.add_argument("--sweep", action="store_true", help="figures over a range of thresholds")
    ev.add_argument("--typos", type=positive, metavar="N",
                    help="ask each question as N misspelt copies instead (one typo each; "
                         "the same typos every run)")
    ev.add_argument("--min-accuracy", type=float, metavar="PCT",
                    help="exit 1 when in-scope accuracy is below PCT")
    ev.add_argument("--max-wrong", type=float, metavar="PCT",
                    help="exit 1 when confidently wrong answers exceed PCT of all questions")
    ev.add_argument("--json", action="store_true", help="one JSON object of figures per part")
    ev.add_argument("-q", "--quiet", action="store_true", help="figures only, no list of misses")
    add_knowledge_option(ev)
    ev.set_defaults(func=cmd_kb_eval)

    maintain.register(kb_sub)
