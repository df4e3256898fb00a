"""A :class:`~ctxref.show.model.Picture` as one static SVG document.

The same picture as the HTML page, without its interaction: every turn
expanded, the findings listed at the top, the timeline on the left, the
projection columns on the right.  Texts are cut to fit; the HTML page has
them whole.  Links inside the document (a finding to its row, a message to
the row it came from) are SVG anchors.
"""

from __future__ import annotations

from html import escape
from typing import Final

from .model import MARKERS, Later, Picture
from .page import FATE_COLOURS, LATE_COLOUR, LEVEL_COLOURS, LEVEL_WORDS, MARKER_STYLE

ROW: Final = 20
LANE: Final = 14
MSG: Final = 40
WIDTH_TIMELINE: Final = 820
WIDTH_COLUMN: Final = 440
#: Findings listed at the top of the SVG; every one is marked on its rows anyway.
MAX_LISTED: Final = 40


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def render_svg(p: Picture) -> str:
    out: list[str] = []
    w = out.append
    lanes = p.lanes
    width = WIDTH_TIMELINE + WIDTH_COLUMN * max(1, len(p.columns)) + 40
    y = 28
    body: list[str] = []
    b = body.append
    b(f'<text x="16" y="{y}" class="h1">{_e(_cut(p.title, 110))}</text>')
    y += 18
    b(f'<text x="16" y="{y}" class="sub">{_e(_cut(p.subtitle, 160))}</text>')
    y += 22
    if p.findings:
        b(f'<text x="16" y="{y}" class="bad">{len(p.findings)} finding(s)</text>')
    else:
        b(f'<text x="16" y="{y}" class="good">clean: nothing found</text>')
    y += 8
    shown = sorted(p.findings, key=lambda f: list(LEVEL_COLOURS).index(f.level) if f.level in LEVEL_COLOURS else 9)
    for f in shown[:MAX_LISTED]:
        y += 18
        colour = LEVEL_COLOURS.get(f.level, "#555")
        first = f.rows[0] if f.rows else 1
        b(f'<a href="#r{first}" id="{f.key}" data-findings="{f.key}"><rect x="16" y="{y - 12}" width="5" height="15" fill="{colour}"/>')
        b(f'<text x="26" y="{y}"><tspan font-weight="700">{_e(f.rule)} {_e(f.title)}</tspan> <tspan fill="{colour}" font-weight="700">[{_e(f.level)}]</tspan> {_e(_cut(f.why, 190))}</text></a>')
    if len(shown) > MAX_LISTED:
        y += 18
        b(f'<text x="26" y="{y}" class="sub">... and {len(shown) - MAX_LISTED} more, marked on the rows below (the HTML page lists them all)</text>')
    y += 26
    # the legend
    x = 16
    for fate, (colour, _words) in FATE_COLOURS.items():
        b(f'<rect x="{x}" y="{y - 10}" width="12" height="12" rx="3" fill="{colour}"/><text x="{x + 16}" y="{y}" class="small">{_e(fate)}</text>')
        x += 24 + 7 * len(fate)
    b(f'<line x1="{x + 6}" y1="{y - 10}" x2="{x + 6}" y2="{y + 2}" stroke="#8e44ad" stroke-width="3" stroke-dasharray="3 2"/><text x="{x + 14}" y="{y}" class="small">late note</text>')
    x += 90
    for kind, (colour, icon, _words) in MARKER_STYLE.items():
        b(f'<rect x="{x}" y="{y - 11}" width="{24 + 8 * len(kind.value)}" height="15" rx="7" fill="{colour}"/><text x="{x + 5}" y="{y}" class="mk">{icon} {_e(kind.value)}</text>')
        x += 32 + 8 * len(kind.value)
    y += 18
    x = 16
    for level, colour in LEVEL_COLOURS.items():
        text = f"{level}: {LEVEL_WORDS[level]}"
        b(f'<text x="{x}" y="{y}" class="small"><tspan fill="{colour}" font-weight="700">{_e(level)}</tspan>: {_e(LEVEL_WORDS[level])}</text>')
        x += 6 * len(text) + 24
    y += 26
    top = y
    b(f'<text x="16" y="{top}" class="h2">timeline</text>')
    for c, col in enumerate(p.columns):
        b(f'<text x="{WIDTH_TIMELINE + 20 + c * WIDTH_COLUMN}" y="{top}" class="h2">{_e(_cut(col.title, 60))}</text>')
    top += 12
    _timeline(p, body, top, lanes)
    bottom = top + ROW * len(p.rows)
    for c, col in enumerate(p.columns):
        bottom = max(bottom, _column(p, body, c, top))
    height = bottom + 30
    w(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif" font-size="12">')
    w(f"<title>{_e(p.title)}: ctxcontract show</title>")
    w(
        "<style>.h1{font-size:17px;font-weight:700}.h2{font-size:13px;font-weight:700}.sub{fill:#5a6270}.small{font-size:11px;fill:#3b4350}"
        ".bad{fill:#d32f2f;font-weight:700}.good{fill:#2e9d57;font-weight:700}.mk{font-size:11px;fill:#fff;font-weight:700}.ln{fill:#8a919c;font-size:11px}"
        ".kind{fill:#5a6270;font-size:11px}.role{font-size:10px;font-weight:700}</style>"
    )
    w(f'<rect width="{width}" height="{height}" fill="#fff"/>')
    out.extend(body)
    w("</svg>\n")
    return "".join(out)


def _timeline(p: Picture, body: list[str], top: int, lanes: int) -> None:
    add = body.append
    hits: dict[int, list[str]] = {}
    bar_hit: set[str] = set()
    for f in p.findings:
        for hit in f.rows:
            hits.setdefault(hit, []).append(f.key)
        bar_hit.update(f.bars)
    point = p.point if p.point is not None else len(p.rows)
    lane_x = 52
    kind_x = lane_x + LANE * (lanes + 2) + 6
    text_x = kind_x + 104
    for r in p.rows:
        y = top + ROW * (r.index - 1)
        keys = hits.get(r.index, [])
        attrs = f' id="r{r.index}" data-row="{r.index}" data-line="{r.line}"' + (f' data-findings="{" ".join(keys)}"' if keys else "")
        add(f"<g{attrs}>")
        if keys:
            add(f'<rect x="8" y="{y}" width="{WIDTH_TIMELINE - 12}" height="{ROW}" fill="#fdecea"/><rect x="8" y="{y}" width="4" height="{ROW}" fill="#d32f2f"/>')
        if r.index == point:
            add(f'<line x1="8" x2="{WIDTH_TIMELINE - 4}" y1="{y + ROW}" y2="{y + ROW}" stroke="#1565c0" stroke-width="2"/>')
        add(f'<text x="44" y="{y + 14}" text-anchor="end" class="ln">{r.line or "–"}</text>')
        if r.kind in MARKERS:
            colour, icon, _ = MARKER_STYLE[r.kind]
            add(f'<rect x="{kind_x}" y="{y + 3}" width="98" height="15" rx="7" fill="{colour}"/><text x="{kind_x + 5}" y="{y + 14}" class="mk">{icon} {_e(_cut(r.kind.value, 13))}</text>')
        else:
            add(f'<text x="{kind_x}" y="{y + 14}" class="kind">{_e(r.kind.value)}</text>')
        text = r.text + ("  → " + r.about if r.about else "")
        weight = ' font-weight="700"' if r.kind.value == "prompt" else ""
        add(f'<text x="{text_x}" y="{y + 14}"{weight}>{_e(_cut(text, 84))}')
        said: set[str] = set()
        for k in keys:
            f = next(x for x in p.findings if x.key == k)
            add(f'<tspan fill="{LEVEL_COLOURS.get(f.level, "#555")}" font-weight="700">  {_e(f.rule)} {_e(f.level)}</tspan>')
            for row, words in f.notes:
                if row == r.index and words not in said:
                    said.add(words)
                    add(f'<tspan fill="#b71c1c" font-weight="700">  ⚠ {_e(_cut(words, 90))}</tspan>')
        if r.index == point:
            add('<tspan fill="#1565c0" font-weight="700">  ▶ projection shown</tspan>')
        add("</text></g>")
    for s in p.spans:
        x = lane_x + (0 if s.kind == "step" else LANE) + 5
        colour = "#cfd8e3" if s.kind == "step" else "#2c6fbb"
        add(f'<rect x="{x}" y="{top + ROW * (s.start - 1) + 3}" width="4" height="{ROW * (s.end - s.start + 1) - 6}" rx="2" fill="{colour}"><title>{_e(s.label)}</title></rect>')
    for bar in p.bars:
        x = lane_x + LANE * (bar.lane + 2) + 3
        end = bar.end if bar.end is not None else len(p.rows)
        y1 = top + ROW * (bar.start - 1) + 5
        y2 = top + ROW * end - 5
        colour = FATE_COLOURS[bar.fate.value][0]
        stroke = ' stroke="#d32f2f" stroke-width="2"' if bar.key in bar_hit else ""
        opacity = ' fill-opacity="0.45"' if bar.later in (Later.SUMMARIZED, Later.UNDONE, Later.CLEARED) else ""
        add(f'<rect data-bar="{bar.key}" data-call="{_e(bar.id)}" data-fate="{_e(bar.fate.value)}" x="{x}" y="{y1}" width="8" height="{max(6, y2 - y1)}" rx="4" fill="{colour}"{opacity}{stroke}><title>{_e(bar.describe(p.line_of))}</title></rect>')
        if bar.later in (Later.LATE_NOTE, Later.LATE_DROPPED) and bar.later_row is not None and bar.end is not None:
            late = LATE_COLOUR.get(bar.later.value, "#8e44ad")
            ly = top + ROW * (bar.later_row - 1) + 10
            add(f'<line x1="{x + 4}" x2="{x + 4}" y1="{y2}" y2="{ly}" stroke="{late}" stroke-width="3" stroke-dasharray="4 3"/><circle cx="{x + 4}" cy="{ly}" r="4" fill="{late}"/>')


def _column(p: Picture, body: list[str], c: int, top: int) -> int:
    b = body.append
    marks: dict[int, list[str]] = {}
    for f in p.findings:
        for cc, pos in f.messages:
            if cc == c:
                marks.setdefault(pos, []).append(f.key)
    x = WIDTH_TIMELINE + 20 + c * WIDTH_COLUMN
    y = top
    for pos, s in enumerate(p.columns[c].messages):
        keys = marks.get(pos, [])
        stroke = "#d32f2f" if keys or s.ghost else "#c4cad3"
        fill = "#fdecea" if keys or s.ghost else "#fff"
        dash = ' stroke-dasharray="6 4"' if s.ghost else ""
        width = 2 if keys or s.ghost else 1
        attrs = f' id="m{c}-{pos}" data-role="{_e(s.role)}"' + (f' data-from="{s.row}"' if s.row is not None else "") + (f' data-findings="{" ".join(keys)}"' if keys else "")
        link = f'<a href="#r{s.row}">' if s.row is not None else "<a>"
        b(f"<g{attrs}>{link}")
        b(f'<rect x="{x}" y="{y}" width="{WIDTH_COLUMN - 16}" height="{MSG - 4}" rx="4" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>')
        head = "✗ MISSING" if s.ghost else f"[{s.index}] {s.role.upper()}"
        if s.call_id:
            head += f" for {s.call_id}"
        if s.flags:
            head += " (" + ", ".join(s.flags) + ")"
        if s.row is not None:
            head += f" · from line {p.line_of(s.row) or '–'}"
        for k in keys:
            f = next(x for x in p.findings if x.key == k)
            head += f"  {f.rule} {f.level}"
        colour = "#b71c1c" if keys or s.ghost else "#1d2330"
        b(f'<text x="{x + 8}" y="{y + 14}" class="role" fill="{colour}">{_e(_cut(head, 70))}</text>')
        text = s.text + ("  calls " + ", ".join(f"{i} {n}" for i, n in s.calls) if s.calls else "")
        b(f'<text x="{x + 8}" y="{y + 29}" fill="{colour}">{_e(_cut(text, 66))}</text></a></g>')
        y += MSG
    return y
