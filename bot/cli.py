"""The ``faqbot`` command line: a thin layer over the core, the store and the Slack app.

Every handler takes the parsed ``args`` and returns an exit code; library errors become one
line on stderr (``error: …``) and exit 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.config import Settings
from bot.errors import FaqbotError, KnowledgeError
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.semantic import with_model

__all__ = ["build_parser", "main"]


def _settings() -> Settings:
    return Settings.from_env()


def _knowledge(args: argparse.Namespace, *, semantic: bool = True) -> KnowledgeBase:
    """The configured knowledge, with the optional semantic model when it has settings for it
    (and ``semantic``: commands that only rank, never decide, go without)."""
    settings = _settings()
    kb = load_knowledge(args.knowledge or settings.knowledge_path)
    return with_model(kb, settings.semantic) if semantic else kb


def _add_knowledge_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--knowledge",
        metavar="PATH",
        help="knowledge YAML (default: $KNOWLEDGE_PATH or knowledge/faq.yaml)",
    )


# --------------------------------------------------------------------------- ask


def _terminal_mrkdwn(text: str) -> str:
    """Slack mrkdwn made readable in a terminal: links as ``label (url)``."""
    text = re.sub(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<((?:https?|mailto):[^>]+)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_decision(decision, *, explain: bool, batch: bool) -> None:
    from bot.matching import Decision

    assert isinstance(decision, Decision)
    entry = decision.entry.id if decision.entry else "-"
    head = f"{decision.action:<7} {entry:<20} score {decision.score:5.1f}"
    if decision.reason:
        head += f"  reason {decision.reason}"
    if batch:
        print(f"{head}  | {_one_line(decision.question)}")
        return
    print(head)
    if decision.entry:
        print(f"\n  {decision.entry.question}\n")
        for line in _terminal_mrkdwn(decision.entry.answer).splitlines():
            print(f"  {line}")
        print()
    if decision.candidates:
        print("candidates:")
        for c in decision.candidates:
            print(f"  {c.score:5.1f}  {c.entry_id:<20} {_one_line(c.question)}")
    if explain and "blend" in decision.explain:
        _print_blend(decision.explain)
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


def _print_blend(ex: dict) -> None:
    """``ask --explain`` for knowledge decided by the calibrated blend (no tuned thresholds)."""
    blend = ex["blend"]
    print("\nwhy (calibrated blend: this knowledge sets no thresholds):")
    fixed = " (typos as corrected)" if blend["corrected"] else ""
    print(f"  reading:   {ex.get('reading', '')!r}{fixed}")
    rest = (" (semantic model)" if blend["model"]
            else f" + {blend['lexical_weight']:g} × lexical/100 (no semantic model)")
    first = "cosine(question, question + answer) + " if blend["model"] else ""
    print(f"  score = {first}{blend['bm25_weight']:g} × BM25{rest}")
    print(f"  shown so that {blend['answer_at']:g} answers (with a lead of {blend['margin']:g}); "
          f"did-you-mean from {blend['clarify_at']:g}")
    if ex.get("thin"):
        print(f"  {ex['thin']} has few phrasings: the blend decides for it")
    if ex.get("not_covered"):
        nc = ex["not_covered"]
        print(f"  not answered: nearer to not_covered {nc['question']!r} (cosine {nc['cosine']}) "
              f"than to the top entry ({nc['entry_cosine']})")
    for row in ex.get("ranked", []):
        parts = "".join(f"  {k} {row[k]}" for k in ("cosine", "bm25", "lexical") if k in row)
        print(f"  {row['score']:5.1f} {row['entry']:<18} blend {row['blend']}{parts}")


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.matching import decide

    kb = _knowledge(args)
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
            _print_decision(decision, explain=args.explain, batch=batch)
            if batch:
                sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- chat


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat import run_chat

    settings = _settings()
    kb = _knowledge(args)
    return run_chat(kb, database_url=args.database_url or settings.database_url)


# --------------------------------------------------------------------------- kb


def _load_or_report(args: argparse.Namespace, hint: str = "") -> tuple[str, KnowledgeBase | None]:
    """The knowledge at ``kb check``/``kb lint``'s PATH; None after printing every problem."""
    path = args.path or args.knowledge or _settings().knowledge_path
    try:
        return path, load_knowledge(path)
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem)
        n = len(exc.problems)
        print(f"{path}: {n} problem{'s' if n != 1 else ''}{hint}", file=sys.stderr)
        return path, None


def cmd_kb_check(args: argparse.Namespace) -> int:
    path, kb = _load_or_report(args)
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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


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


def _print_sweep(parts: list[tuple[str, list]], kb: KnowledgeBase, moving: str,
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

    kb = _knowledge(args)
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
                          f"{d.action} {got} ({d.score:.0f})  {_one_line(o.case.question, 70)}")
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


# --------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from bot.slack.server import run

    settings = _settings()
    if args.knowledge:
        settings = settings.with_(knowledge_path=args.knowledge)
    if args.port:
        settings = settings.with_(port=args.port)
    return run(settings)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faqbot",
        description="Answers developers' questions from an FAQ; what it cannot answer becomes "
        "a support ticket.",
    )
    parser.add_argument("--version", action="version", version=f"faqbot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start the Slack app (Socket Mode or HTTP)")
    _add_knowledge_option(run)
    run.add_argument("--port", type=int, help="HTTP port (default: $PORT or 3000)")
    run.set_defaults(func=cmd_run)

    ask = sub.add_parser("ask", help="print the decision for a question (or each stdin line)")
    ask.add_argument("question", nargs="*", help="the question; omit to read lines from stdin")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.add_argument("--explain", action="store_true", help="show why: words, weights, parts")
    _add_knowledge_option(ask)
    ask.set_defaults(func=cmd_ask)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal (tickets are stored)")
    _add_knowledge_option(chat)
    chat.add_argument("--database-url", help="ticket store (default: $DATABASE_URL or SQLite)")
    chat.set_defaults(func=cmd_chat)

    kb = sub.add_parser("kb", help="maintain the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND", required=True)

    check = kb_sub.add_parser("check", help="validate a knowledge file (PATH:LINE: message)")
    check.add_argument("path", nargs="?", help="knowledge YAML (default: the configured one)")
    _add_knowledge_option(check)
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
    _add_knowledge_option(imp)
    imp.set_defaults(func=cmd_kb_import)

    ev = kb_sub.add_parser("eval", help="accuracy on a YAML file of labelled questions")
    ev.add_argument("cases", help="YAML list of {q: question, expect: entry-id | none | cap}")
    ev.add_argument("--range", action="append", type=_parse_range, metavar="A-B",
                    help="only cases A to B (1-based; repeat for several parts)")
    ev.add_argument("--split", type=int, metavar="N", help="report cases 1-N and N+1- apart")
    ev.add_argument("--sweep", action="store_true", help="figures over a range of thresholds")
    ev.add_argument("--typos", type=_positive, metavar="N",
                    help="ask each question as N misspelt copies instead (one typo each; "
                         "the same typos every run)")
    ev.add_argument("--min-accuracy", type=float, metavar="PCT",
                    help="exit 1 when in-scope accuracy is below PCT")
    ev.add_argument("--max-wrong", type=float, metavar="PCT",
                    help="exit 1 when confidently wrong answers exceed PCT of all questions")
    ev.add_argument("--json", action="store_true", help="one JSON object of figures per part")
    ev.add_argument("-q", "--quiet", action="store_true", help="figures only, no list of misses")
    _add_knowledge_option(ev)
    ev.set_defaults(func=cmd_kb_eval)

    try:
        from bot import cli_maintain
    except ImportError:
        pass
    else:
        cli_maintain.register(kb_sub)

    try:
        from bot import cli_tickets
    except ImportError:
        pass
    else:
        cli_tickets.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        if args.command is None:
            args = parser.parse_args(["run", *(argv or [])])
        else:
            parser.print_help()
            sys.exit(2)
    try:
        code = args.func(args)
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        code = 1
    except FaqbotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    sys.exit(code)
