"""What ``helpline stats`` prints: every bucket, the total of each event and kind (detail)
over the period, and the total of each event, with small counts hidden.

A count under ``min_count`` shows as "<5" (for the default 5). A total is hidden too
("hidden") when it would let someone work a hidden count out: when exactly one of the
counts it adds up is hidden, or the hidden ones add up to less than ``min_count`` (the total
minus what is shown would give them). A total hidden so is itself a hidden count for the
total above it, by the same rule.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from helpline.stats.counts import Count

ALL = "all"
HIDDEN = "hidden"


@dataclass(frozen=True)
class Row:
    week: str
    event: str
    detail: str
    channel: str
    language: str
    campaign: str
    count: str  # a number, "<5" or "hidden"


@dataclass
class _Node:
    value: int
    hidden: bool
    small: bool  # hidden because it is small itself


def _node(value: int, children: Sequence[_Node], min_count: int) -> _Node:
    if 0 < value < min_count:
        return _Node(value, True, True)
    hidden = [c for c in children if c.hidden]
    if hidden and (len(hidden) == 1 or sum(c.value for c in hidden) < min_count):
        return _Node(value, True, False)
    return _Node(value, False, False)


def _shown(node: _Node, min_count: int) -> str:
    if not node.hidden:
        return str(node.value)
    return f"<{min_count}" if node.small else HIDDEN


def table(counts: Sequence[Count], min_count: int = 5) -> list[Row]:
    """The rows to print, each event's buckets then its totals, in order."""
    by_event: dict[str, list[Count]] = defaultdict(list)
    for c in counts:
        by_event[c.event].append(c)
    rows: list[Row] = []
    for event in sorted(by_event):
        cells = [(c, _node(c.count, (), min_count)) for c in by_event[event]]
        rows += [Row(c.week, c.event, c.detail, c.channel, c.language, c.campaign,
                     _shown(n, min_count)) for c, n in cells]
        by_detail: dict[str, list[_Node]] = defaultdict(list)
        for c, n in cells:
            by_detail[c.detail].append(n)
        totals: list[_Node] = []
        for detail in sorted(by_detail):
            children = by_detail[detail]
            total = _node(sum(n.value for n in children), children, min_count)
            totals.append(total)
            if len(by_detail) > 1 or detail:
                rows.append(Row(ALL, event, detail, ALL, ALL, ALL, _shown(total, min_count)))
        grand = _node(sum(t.value for t in totals), totals, min_count)
        rows.append(Row(ALL, event, ALL, ALL, ALL, ALL, _shown(grand, min_count)))
    return rows


COLUMNS = ("week", "event", "detail", "channel", "language", "campaign", "count")


def as_text(rows: Sequence[Row]) -> str:
    widths = [max([len(name), *(len(getattr(r, name)) for r in rows)]) for name in COLUMNS]
    lines = ["  ".join(n.ljust(w) for n, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(getattr(r, n).ljust(w) if n != "count" else getattr(r, n)
                               .rjust(w) for n, w in zip(COLUMNS, widths, strict=True)))
    return "\n".join(lines)


def as_csv(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([getattr(r, n) for n in COLUMNS] for r in rows)
    return out.getvalue()


def as_json(rows: Sequence[Row]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=1, ensure_ascii=False)


__all__ = ["ALL", "COLUMNS", "HIDDEN", "Row", "as_csv", "as_json", "as_text", "table"]
