"""A self-contained HTML page of a ``compare`` result, to paste into a decision document.

One file, no scripts, no external assets: inline CSS, the tables, and a grouped bar chart of hit
rates drawn as inline SVG. Every string from the data is escaped.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any

from recs.atomic import Outputs, writing
from recs.display import FORMATS, Format, format_value, header
from recs.eval.compare import CART_TO_CART, CLICK_TO_CART, ITEM_TO_ITEM

# Column names and number formats are those of the terminal tables (recs.display).
COLUMN_TITLES = {c: header(c) for c in (ITEM_TO_ITEM, CLICK_TO_CART, CART_TO_CART)}
BAR_COLORS = {ITEM_TO_ITEM: "#9aa5b1", CLICK_TO_CART: "#2f6fb3", CART_TO_CART: "#e07b24"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;padding:0 1.5em;max-width:70em;
color:#222;box-sizing:border-box}
svg{max-width:100%;height:auto}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.8em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em}th{background:#f3f4f6;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.best td.n.hl{font-weight:bold}
.note{color:#555;font-size:.85em}.group td{background:#fafafa;font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, spec: Format | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return _e(format_value(value, spec))


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str | tuple[str, str]],
           best: Set[str] = frozenset()) -> str:
    """An HTML table of ``columns`` (keys, titled as in the terminal, or (key, title) pairs); in each
    column named in ``best`` the largest number is bold."""
    titled = [(c, header(c)) if isinstance(c, str) else c for c in columns]
    tops = {c: max((r[c] for r in rows if isinstance(r.get(c), float)), default=None) for c in best}
    head = "".join(f"<th>{_e(title)}</th>" for _, title in titled)
    body = []
    for r in rows:
        cells = []
        for key, _ in titled:
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                bold = key in tops and tops[key] is not None and v == tops[key]
                cells.append(f'<td class="n">{"<b>" if bold else ""}{_num(v, FORMATS.get(key))}'
                             f'{"</b>" if bold else ""}</td>')
            else:
                cells.append(f"<td>{_num(v, FORMATS.get(key))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# Text is measured without a browser: a generous average glyph width (em) of a sans-serif font, so a
# label given room by it is never cut at the picture's left edge (real glyphs average ~0.5 em).
CHAR_EM = 0.62
LABEL_PX = 12  # font size of the method labels
TICK_STEPS = (1, 2, 5)  # axis steps are these times a power of ten: 0.05, 0.1, 0.2 ...


def text_px(text: str, size: float = LABEL_PX) -> float:
    """The width ``text`` may take at ``size`` px, by ``CHAR_EM`` (an upper estimate)."""
    return len(text) * CHAR_EM * size


def nice_ticks(top: float, most: int = 6) -> list[float]:
    """Ticks 0, s, 2s, ... up to the first multiple of s at or above ``top``, at most ``most`` + 1 of
    them, s a round step (1, 2 or 5 times a power of ten), so a reader reads 0.1 and 0.2, not 0.09."""
    top = top if top > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(top / most))
    step = next(m * power for m in (*TICK_STEPS, 10) if top / (m * power) <= most)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(count + 1)]


def _tick_text(value: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{digits}f}"


def _label_lines(label: str, room: float) -> list[str]:
    """``label`` in lines that fit ``room`` px, broken at spaces (a word is never cut)."""
    chars = max(1, int(room // (CHAR_EM * LABEL_PX)))
    return textwrap.wrap(label, chars, break_long_words=False, break_on_hyphens=False) or [label]


def bar_chart(table1: Sequence[Mapping[str, Any]], width: int = 760) -> str:
    """Grouped horizontal bars: one group per method, one bar per hit-rate column that it has.

    The label column is as wide as the longest label needs (up to 40% of the chart; a longer label
    wraps onto more lines), so no label is cut; the axis ends at a round tick above the longest bar."""
    cols = [c for c in COLUMN_TITLES if any(r.get(c) is not None for r in table1)]
    rows = [r for r in table1 if any(r.get(c) is not None for c in cols)]
    ticks = nice_ticks(max((r[c] for r in rows for c in cols if r.get(c) is not None), default=0.0))
    top, step = ticks[-1], ticks[1] - ticks[0]
    margin, bar_h, gap, pad, line_h = 8, 12, 10, 24, 14
    labels = [str(r.get("label", r["method"])) for r in rows]
    room = width * 0.4 - margin - 6
    lines = [_label_lines(label, room) for label in labels]
    label_w = math.ceil(margin + 6 + max((text_px(ln) for ls in lines for ln in ls), default=0.0))
    plot_w = width - label_w - 60
    heights = [max(bar_h * len(cols), line_h * len(ls)) + gap for ls in lines]
    height = pad + sum(heights) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="hit rate per method" '
             f'font-family="system-ui,sans-serif" font-size="{LABEL_PX}">']
    for i, c in enumerate(cols):  # legend
        key_x = label_w + i * 130
        parts.append(f'<rect x="{key_x}" y="4" width="12" height="12" fill="{BAR_COLORS[c]}"/>'
                     f'<text x="{key_x + 16}" y="14">{_e(COLUMN_TITLES[c])}</text>')
    y0 = pad
    for r, ls, group_h in zip(rows, lines, heights, strict=True):
        middle = y0 + (group_h - gap) / 2
        first = middle - line_h * (len(ls) - 1) / 2 + 4
        spans = "".join(f'<tspan x="{label_w - 6}" y="{first + j * line_h:.1f}">{_e(ln)}</tspan>'
                        for j, ln in enumerate(ls))
        parts.append(f'<text x="{label_w - 6}" y="{first:.1f}" text-anchor="end">{spans}</text>')
        bars_y = middle - bar_h * len(cols) / 2
        for i, c in enumerate(cols):
            v = r.get(c)
            if v is None:
                continue
            y, w = bars_y + i * bar_h, max(0.5, plot_w * v / top)
            parts.append(f'<rect x="{label_w}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2}" '
                         f'fill="{BAR_COLORS[c]}"><title>{_e(COLUMN_TITLES[c])}: {v:.4f}</title></rect>'
                         f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3:.1f}" font-size="10">{v:.3f}</text>')
        y0 += group_h
    axis_y = y0
    parts.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#888"/>')
    for v in ticks:
        x = label_w + plot_w * v / top
        parts.append(f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#888"/>'
                     f'<text x="{x:.1f}" y="{axis_y + 15}" text-anchor="middle" font-size="10" class="tick">'
                     f'{_tick_text(v, step)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(result: Mapping[str, Any], title: str = "recs compare") -> str:
    """The whole page as a string."""
    s, d = result["settings"], result["data"]
    ev = s["eval"]
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>"]
    out.append(
        f"<p>Train: {d['train_events']:,} events, {d['train_sessions']:,} sessions, {d['train_items']:,} items. "
        f"Test: {d['test_events']:,} events, {d['test_sessions']:,} sessions. "
        f"k = {s['k']}, score = {_e(s['index']['score'])}, triggers = last {ev['triggers']} distinct items, "
        f"targets = {_e(', '.join(ev['targets']))}, seed = {s['seed']}.</p>"
    )
    out.append("<h2>Table 1 — purchase-intent hit rate per method</h2>")
    out.append(bar_chart(result["table1"]))
    cols = ["label", "group", ITEM_TO_ITEM, CLICK_TO_CART, CART_TO_CART, "time_s", "status"]
    out.append(_table(result["table1"], cols, best={CLICK_TO_CART, CART_TO_CART, ITEM_TO_ITEM}))
    out.append(
        "<p class='note'>Hit rate = share of test cart/purchase events whose item is in the union of the candidate "
        "lists of their triggers. Click-to-Cart: triggers are the last clicked items; Cart-to-Cart: the last carted "
        "items. Item-level methods answer one list per item for every column; their Item-to-Item column uses any "
        "earlier event as a trigger. Time = fit + candidate generation.</p>"
    )
    if result.get("table3"):
        out.append("<h2>Table 3 — our model: trigger interaction × candidate interaction</h2>")
        out.append(_table(result["table3"], ["trigger", "click", "cart"]))
    if result.get("table2"):
        out.append("<h2>Table 2 — mean cosine similarity of our vectors, random item pairs</h2>")
        out.append(_table(result["table2"], [("interaction", "vectors"), "same_category", "different_category",
                                             "items", "pairs"]))
    out.append("<h2>Coverage (paper 5.3.3)</h2>")
    out.append(_table(result["coverage"], ["method", "set", "active_items", "covered_items", "coverage",
                                           "mean_list_length", "catalogue_reach"]))
    if result.get("notes"):
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in result["notes"]) + "</ul>")
    out.append("</body></html>\n")
    return "".join(out)


def write_report(
    path: str | Path, result: Mapping[str, Any], title: str = "recs compare", outputs: Outputs | None = None
) -> Path:
    """Write the page atomically (with ``outputs``: staged with the command's other outputs); return its path."""
    with writing(path, outputs) as tmp:
        tmp.write_text(render(result, title), encoding="utf-8")
    return Path(path)
