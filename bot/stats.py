"""Weekly figures of the question log and their HTML page (pure, no I/O).

Usage::

    rows = store.questions(since)                 # the question log (bot.tickets)
    weeks = weekly_stats(rows)                    # faqbot kb stats
    Path("report.html").write_text(stats_html(weeks, title=kb.title))
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bot.gaps import HELPFUL, NOT_HELPFUL

__all__ = ["Week", "stats_html", "weekly_stats"]


@dataclass
class Week:
    """One ISO week of the question log."""

    year: int
    week: int
    start: date  # its Monday
    questions: int = 0
    answered: int = 0
    clarified: int = 0
    picked: int = 0  # clarified questions whose asker then picked an entry
    ticketed: int = 0
    helpful: int = 0
    not_helpful: int = 0
    entries: Counter[str] = field(default_factory=Counter)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    def rate(self, count: int) -> float:
        return 100.0 * count / self.questions if self.questions else 0.0

    def top_entries(self, n: int = 3) -> list[tuple[str, int]]:
        return self.entries.most_common(n)

    def to_json(self) -> dict[str, Any]:
        return {
            "week": self.label,
            "start": self.start.isoformat(),
            "questions": self.questions,
            "answer_rate": round(self.rate(self.answered), 1),
            "clarify_rate": round(self.rate(self.clarified), 1),
            "picked": self.picked,
            "ticket_rate": round(self.rate(self.ticketed), 1),
            "helpful": self.helpful,
            "not_helpful": self.not_helpful,
            "top_entries": [{"entry": e, "count": c} for e, c in self.top_entries()],
        }


def weekly_stats(rows: Iterable[Mapping[str, Any]]) -> list[Week]:
    """Figures per ISO week (oldest first), weeks without questions included."""
    weeks: dict[tuple[int, int], Week] = {}
    for row in rows:
        at = row.get("at")
        if not isinstance(at, datetime):
            continue
        year, number, _ = at.isocalendar()
        week = weeks.get((year, number))
        if week is None:
            week = weeks[(year, number)] = Week(year, number, date.fromisocalendar(year, number, 1))
        week.questions += 1
        action = row.get("action")
        if action == "answer":
            week.answered += 1
        elif action == "clarify":
            week.clarified += 1
            if row.get("picked"):  # the asker picked an entry: its answer was shown
                week.picked += 1
                week.entries[row["picked"]] += 1
        elif action == "ticket":
            week.ticketed += 1
        if row.get("feedback") in HELPFUL:
            week.helpful += 1
        elif row.get("feedback") == NOT_HELPFUL:
            week.not_helpful += 1
        if row.get("entry"):
            week.entries[row["entry"]] += 1
    if not weeks:
        return []
    ordered = sorted(weeks.values(), key=lambda w: w.start)
    out, day = [], ordered[0].start
    while day <= ordered[-1].start:
        year, number, _ = day.isocalendar()
        out.append(weeks.get((year, number)) or Week(year, number, day))
        day += timedelta(days=7)
    return out


# --------------------------------------------------------------------------- HTML report

_COLORS = {"answer": "#2e7d32", "clarify": "#f9a825", "ticket": "#c62828",
           "helpful": "#2e7d32", "not_helpful": "#c62828", "entry": "#1565c0"}

_CSS = """
body{font:15px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1c1d;
margin:2rem auto;max-width:60rem;padding:0 1rem;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.muted{color:#616061}.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #eee;padding:.35rem .5rem;text-align:right}
th:first-child,td:first-child,td.l,th.l{text-align:left}
.legend span{display:inline-block;margin-right:1rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
svg text{font:12px -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;fill:#333}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10):  # each a multiple of 4 nice steps
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{color}"></i>{_e(label)}</span>' for label, color in items
    ) + "</p>"


def _bars(weeks: Sequence[Week], series: Sequence[tuple[str, str, list[int]]], *,
          stacked: bool, title: str) -> str:
    """A vertical bar chart, one slot per week: stacked or side by side."""
    width, height, left, bottom, top = 760, 240, 44, 40, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(s[2][i] for s in series) if stacked else max((s[2][i] for s in series), default=0)
              for i in range(len(weeks))]
    ymax = _nice_max(max(totals, default=0))
    slot = plot_w / max(len(weeks), 1)
    bar = min(slot * 0.7, 48)
    parts = [f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
             f'width="100%"><title>{_e(title)}</title>']
    for k in range(5):  # grid lines and labels
        value = ymax * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{value:g}</text>')
    label_every = max(1, math.ceil(len(weeks) / 12))
    for i, week in enumerate(weeks):
        x0 = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for n, (name, color, values) in enumerate(series):
            value = values[i]
            h = plot_h * value / ymax if ymax else 0
            if stacked:
                y -= h
                x, w = x0, bar
            else:
                w = bar / len(series)
                x, y = x0 + n * w, top + plot_h - h
            if value:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                    f'fill="{color}"><title>{_e(week.label)} {_e(name)}: {value}</title></rect>'
                )
        if i % label_every == 0:
            parts.append(f'<text x="{x0 + bar / 2:.1f}" y="{height - bottom + 16}" '
                         f'text-anchor="middle">{_e(week.label[2:])}</text>')
    parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{top + plot_h}" y2="{top + plot_h}" '
                 'stroke="#999"/></svg>')
    return "".join(parts)


def _hbars(items: Sequence[tuple[str, int]], *, title: str) -> str:
    """A horizontal bar chart of labelled counts."""
    if not items:
        return '<p class="muted">No answers yet.</p>'
    row, label_w, width = 24, 200, 760
    height = row * len(items) + 8
    vmax = max(c for _, c in items) or 1
    parts = [f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
             f'width="100%"><title>{_e(title)}</title>']
    for i, (label, count) in enumerate(items):
        y = 4 + i * row
        w = (width - label_w - 60) * count / vmax
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{_e(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                     f'fill="{_COLORS["entry"]}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stats_html(
    weeks: Sequence[Week],
    *,
    title: str = "FAQ",
    since: datetime | None = None,
    generated_at: datetime | None = None,
) -> str:
    """One self-contained HTML page (inline CSS and SVG; no script, nothing fetched)."""
    total = sum(w.questions for w in weeks)
    answered = sum(w.answered for w in weeks)
    tickets = sum(w.ticketed for w in weeks)
    clarified = sum(w.clarified for w in weeks)
    picked = sum(w.picked for w in weeks)
    helpful = sum(w.helpful for w in weeks)
    not_helpful = sum(w.not_helpful for w in weeks)
    entries: Counter[str] = Counter()
    for w in weeks:
        entries.update(w.entries)

    def pct(n: int) -> str:
        return f"{100.0 * n / total:.0f}%" if total else "–"

    period = f"since {since.date()}" if since else "all recorded questions"
    made = f" · generated {generated_at:%Y-%m-%d %H:%M} UTC" if generated_at else ""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — questions per week</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)} — questions per week</h1>",
        f'<p class="muted">{_e(period)}{_e(made)}</p>',
        '<div class="cards">',
        f"<div class=card><b>{total}</b>questions</div>",
        f"<div class=card><b>{pct(answered)}</b>answered</div>",
        f"<div class=card><b>{pct(tickets)}</b>became tickets</div>",
        f"<div class=card><b>{picked} / {clarified}</b>\"did you mean\" picked</div>",
        f"<div class=card><b>{helpful} / {not_helpful}</b>helpful / not helpful</div>",
        "</div>",
    ]
    if not weeks:
        out.append('<p class="muted">No questions were recorded in this period.</p>')
    else:
        out.append("<h2>Questions and what the bot did</h2>")
        out.append(_legend([("answered", _COLORS["answer"]), ("clarified", _COLORS["clarify"]),
                            ("ticket", _COLORS["ticket"])]))
        out.append(_bars(weeks, [
            ("answered", _COLORS["answer"], [w.answered for w in weeks]),
            ("clarified", _COLORS["clarify"], [w.clarified for w in weeks]),
            ("ticket", _COLORS["ticket"], [w.ticketed for w in weeks]),
        ], stacked=True, title="questions per week by outcome"))
        out.append("<h2>Feedback on answers</h2>")
        out.append(_legend([("helpful", _COLORS["helpful"]),
                            ("not helpful", _COLORS["not_helpful"])]))
        out.append(_bars(weeks, [
            ("helpful", _COLORS["helpful"], [w.helpful for w in weeks]),
            ("not helpful", _COLORS["not_helpful"], [w.not_helpful for w in weeks]),
        ], stacked=False, title="feedback per week"))
        out.append("<h2>Most used entries</h2>")
        out.append(_hbars(entries.most_common(10), title="answers per entry"))
        out.append("<h2>Week by week</h2><table><thead><tr>"
                   "<th>week</th><th>questions</th><th>answered</th><th>clarified</th>"
                   "<th>picked</th><th>tickets</th><th>helpful</th><th>not helpful</th>"
                   '<th class="l">top entries</th></tr></thead><tbody>')
        for w in reversed(weeks):
            top = ", ".join(f"{e} ({c})" for e, c in w.top_entries())
            out.append(
                f"<tr><td>{_e(w.label)}</td><td>{w.questions}</td>"
                f"<td>{w.rate(w.answered):.0f}%</td><td>{w.rate(w.clarified):.0f}%</td>"
                f"<td>{w.picked}</td>"
                f"<td>{w.rate(w.ticketed):.0f}%</td><td>{w.helpful}</td><td>{w.not_helpful}</td>"
                f'<td class="l">{_e(top) or "–"}</td></tr>'
            )
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
