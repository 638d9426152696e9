"""``faqbot kb lint|gaps|stats``: the maintainers' weekly loop, on the command line.

    faqbot kb lint [PATH] [--json] [--strict] [-q]
    faqbot kb gaps [--since 30d] [--database-url URL] [--json] [--purge-older-than [90d]]
    faqbot kb stats [--since 90d] [--database-url URL] [--html report.html] [--json]

Each handler takes the parsed ``args`` and returns an exit code; the work is in
:mod:`bot.maintain`, :mod:`bot.gaps` and :mod:`bot.stats`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.cli.common import add_knowledge_option, load_kb, load_or_report, settings
from bot.errors import KnowledgeError

__all__ = ["cmd_kb_gaps", "cmd_kb_lint", "cmd_kb_stats", "parse_duration", "register"]

_UNITS = {"h": 1 / 24, "d": 1, "w": 7}


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12w"``, ``"48h"`` or a number of days (``"90"``) as a timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hdw]?)\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30d, 12w or 48h, got {text!r}"
        )
    return timedelta(days=float(match.group(1)) * _UNITS[match.group(2) or "d"])


def _store(args: argparse.Namespace) -> Any:
    from bot.tickets import open_store

    return open_store(args.database_url or settings().database_url)


def _since(args: argparse.Namespace) -> datetime:
    return datetime.now(UTC) - args.since


# --------------------------------------------------------------------------- lint


def cmd_kb_lint(args: argparse.Namespace) -> int:
    from bot.maintain import lint

    path, kb = load_or_report(args, "; fix them first (faqbot kb check)")
    if kb is None:
        return 1
    report = lint(kb, text=Path(path).read_text(encoding="utf-8"))
    if args.json:
        for finding in report.findings:
            print(json.dumps(finding.to_json(), ensure_ascii=False))
    else:
        for f in report.findings:
            print(f"{path}:{f.line}: {f.severity}: [{f.code}] {f.message}")
        with_yaml = [f for f in report.findings if f.suggestion]
        if with_yaml and not args.quiet:
            print(f"\n# Suggested edits for {path}: review each, then paste it into the entry it "
                  "names.")
            for f in with_yaml:
                print()
                sys.stdout.write(f.suggestion or "")
        w, s = len(report.warnings), len(report.suggestions)
        print(
            f"\n{path}: {report.entries} entries, {report.phrasings} phrasings: "
            f"{w} warning{'s' if w != 1 else ''}, {s} suggestion{'s' if s != 1 else ''}",
        )
    return 1 if args.strict and report.warnings else 0


# --------------------------------------------------------------------------- gaps


def _purge(args: argparse.Namespace, store: Any) -> None:
    if args.purge_older_than is None:
        return
    age = args.purge_older_than
    if age == "default":
        age = timedelta(days=settings().question_retention_days)
    cutoff = datetime.now(UTC) - age
    n = store.purge_questions(cutoff)
    print(f"purged {n} recorded question{'s' if n != 1 else ''} from before "
          f"{cutoff:%Y-%m-%d %H:%M} UTC", file=sys.stderr if args.json else sys.stdout)


def _print_gap(n: int, gap: Any, unit: str) -> None:
    c, s = gap.cluster, gap.suggestion
    print(f"\n{n}. {c.count} {unit}{'s' if c.count != 1 else ''} — {s.note}")
    for example in c.examples:
        print(f"     “{example}”")
    print()
    sys.stdout.write(s.yaml)


def cmd_kb_gaps(args: argparse.Namespace) -> int:
    from bot.gaps import find_gaps

    kb = load_kb(args, semantic=False)  # suggestions go by the lexical ranking
    store = _store(args)
    try:
        _purge(args, store)
        since = _since(args)
        rows = store.questions(since)
    finally:
        store.close()
    report = find_gaps(rows, kb, threshold=args.threshold, min_count=args.min_count,
                       limit=args.limit)
    if args.json:
        for gap in (*report.gaps, *report.picked):
            print(json.dumps(gap.to_json(), ensure_ascii=False))
        return 0
    print(
        f"Since {since:%Y-%m-%d}: {report.questions} question{'s' if report.questions != 1 else ''} "
        f"recorded, {report.unanswered} not answered (tickets, or 'not helpful'), "
        f"in {report.groups} group{'s' if report.groups != 1 else ''}."
    )
    if not report.gaps and not report.picked:
        print(f"No group of {args.min_count} or more questions needs an edit.")
    for n, gap in enumerate(report.gaps, 1):
        _print_gap(n, gap, "question")
    if report.picked:
        print("\nAsked back, and the askers picked the entry (\"Did you mean…\"):")
    for n, gap in enumerate(report.picked, len(report.gaps) + 1):
        _print_gap(n, gap, "pick")
    notes = []
    if report.hidden:
        notes.append(f"{report.hidden} smaller group{'s' if report.hidden != 1 else ''} not shown "
                     "(--limit)")
    if report.answered:
        notes.append(f"{report.answered} group{'s' if report.answered != 1 else ''} the current "
                     "knowledge now answers")
    if notes:
        print("\n(" + "; ".join(notes) + ")")
    return 0


# --------------------------------------------------------------------------- stats


def cmd_kb_stats(args: argparse.Namespace) -> int:
    from bot.stats import stats_html, weekly_stats

    store = _store(args)
    try:
        since = _since(args)
        weeks = weekly_stats(store.questions(since))
    finally:
        store.close()
    if args.html:
        title = "FAQ"
        try:
            title = load_kb(args, semantic=False).title
        except KnowledgeError:
            pass  # the report does not need the knowledge; its title is a nicety
        page = stats_html(weeks, title=title, since=since, generated_at=datetime.now(UTC))
        Path(args.html).write_text(page, encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        for week in weeks:
            print(json.dumps(week.to_json(), ensure_ascii=False))
        return 0
    if not weeks:
        print(f"No questions recorded since {since:%Y-%m-%d}.")
        return 0
    print(f"{'week':<9} {'questions':>9} {'answer':>7} {'clarify':>7} {'picked':>6} "
          f"{'ticket':>7} {'helpful':>8} {'not':>5}  top entries")
    for w in weeks:
        top = ", ".join(f"{e} ({c})" for e, c in w.top_entries())
        print(f"{w.label:<9} {w.questions:>9} {w.rate(w.answered):>6.0f}% "
              f"{w.rate(w.clarified):>6.0f}% {w.picked:>6} {w.rate(w.ticketed):>6.0f}% {w.helpful:>8} "
              f"{w.not_helpful:>5}  {top or '-'}")
    return 0


# --------------------------------------------------------------------------- parser


def register(kb_sub: Any) -> None:
    """Add ``lint``, ``gaps`` and ``stats`` to the ``faqbot kb`` subcommands."""
    lint = kb_sub.add_parser(
        "lint", help="find phrasings the matcher confuses, thin entries, long answers",
        description="Check the knowledge for what makes the bot answer worse: phrasings that "
        "match another entry better than their own, entries with few phrasings, answers without "
        "a link or too long for Slack. Prints suggested YAML. Exit 1 only when the file does "
        "not load (or, with --strict, on warnings).",
    )
    lint.add_argument("path", nargs="?", help="knowledge YAML (default: the configured one)")
    lint.add_argument("--json", action="store_true", help="one JSON object per finding")
    lint.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    lint.add_argument("-q", "--quiet", action="store_true", help="findings only, no YAML")
    add_knowledge_option(lint)
    lint.set_defaults(func=cmd_kb_lint)

    gaps = kb_sub.add_parser(
        "gaps", help="group what users asked that the FAQ did not answer; suggest YAML",
        description="Group recent questions that became tickets or got 'Not helpful', most "
        "frequent first, each with examples and YAML: phrasings for an existing entry, or a "
        "draft new entry.",
    )
    gaps.add_argument("--since", type=parse_duration, default=timedelta(days=30), metavar="AGE",
                      help="questions from the last AGE (30d, 12w, 48h; default 30d)")
    gaps.add_argument("--database-url", help="question log (default: $DATABASE_URL or SQLite)")
    gaps.add_argument("--json", action="store_true", help="one JSON object per group")
    gaps.add_argument("--min-count", type=int, default=2, metavar="N",
                      help="only groups of at least N questions (default 2)")
    gaps.add_argument("--limit", type=int, default=20, metavar="N",
                      help="at most N groups (default 20)")
    gaps.add_argument("--threshold", type=float, default=75.0, metavar="SCORE",
                      help="similarity 0-100 to join a group (default 75)")
    gaps.add_argument(
        "--purge-older-than", type=_duration_or_default, nargs="?", const="default",
        metavar="AGE",
        help="first delete recorded questions older than AGE (default: "
        "$QUESTION_RETENTION_DAYS days) and print how many",
    )
    add_knowledge_option(gaps)
    gaps.set_defaults(func=cmd_kb_gaps)

    stats = kb_sub.add_parser(
        "stats", help="questions per week: answer/clarify/ticket rates, picks, feedback, top entries",
    )
    stats.add_argument("--since", type=parse_duration, default=timedelta(days=90),
                       metavar="AGE", help="questions from the last AGE (default 90d)")
    stats.add_argument("--database-url", help="question log (default: $DATABASE_URL or SQLite)")
    stats.add_argument("--html", metavar="FILE",
                       help="also write a self-contained HTML report with charts")
    stats.add_argument("--json", action="store_true", help="one JSON object per week")
    add_knowledge_option(stats)
    stats.set_defaults(func=cmd_kb_stats)


def _duration_or_default(text: str) -> timedelta | str:
    return "default" if text == "default" else parse_duration(text)
