"""A :class:`~ctxref.show.model.Picture` as one self-contained HTML page.

Inline CSS, a few lines of inline JavaScript (jump to the next finding, open
a collapsed turn a link points into, expand or collapse the clean turns), no
request to anywhere.  Every element a test or a reader looks for carries a
``data-`` attribute: rows ``data-row``/``data-line``, call bars
``data-call``/``data-fate``, messages ``data-from``, and whatever a finding
marks ``data-findings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Final

from .model import MARKERS, Bar, Column, Finding, Kind, Later, Picture, Row, Span

#: Colours, one per call fate, later fate, level and marker: the legend is generated from these.
FATE_COLOURS: Final = {
    "answered": ("#2e9d57", "answered: its result arrived"),
    "closed": ("#e0a100", "closed with a reason (cancelled, lost at crash, stream cut, never answered): a synthetic result"),
    "open at the end": ("#c0392b", "still open at the end of the file: closed when the session is resumed"),
    "dropped": ("#9aa0a6", "dropped: cut mid-arguments, never sent"),
    "unanswered": ("#c0392b", "unanswered: no tool message right after it (a message list)"),
}
LATER_STYLES: Final = {
    "late note": "dashed purple: its result came after it was closed, sent as a user note",
    "late result dropped": "dashed grey: its result came after it was closed; the policy drops it",
    "summarized": "striped: later summarized by a compaction",
    "undone": "striped: later removed by undo",
    "cleared": "striped: later removed by clear",
}
_Writer = Callable[[str], None]
LEVEL_COLOURS: Final = {"reject": "#d32f2f", "loss": "#e67e22", "cache": "#2980b9", "policy": "#7f8c8d"}
LEVEL_WORDS: Final = {
    "reject": "the provider answers 400",
    "loss": "lost context: the model misses what the log holds, or sees what it does not",
    "cache": "sendable, but the prompt cache misses",
    "policy": "only a different choice than the declared policy's",
}
MARKER_STYLE: Final = {
    Kind.STEER: ("#e67e22", "➜", "steer: user input during the turn"),
    Kind.NOTIFICATION: ("#16a085", "✉", "notification: user-role text the runtime injects"),
    Kind.RESUME: ("#8e2c2c", "⟲", "crash / resume: whatever was in flight is lost"),
    Kind.CANCEL: ("#b03a2e", "✕", "cancel: running calls are abandoned"),
    Kind.COMPACTION: ("#2c6fbb", "▤", "compaction: a summary replaces the span it covers (blue bracket)"),
    Kind.UNDO: ("#6c5ce7", "↶", "undo: the last turns removed"),
    Kind.CLEAR: ("#34495e", "⌫", "clear: everything removed but the system prompt"),
    Kind.STEP_ERROR: ("#b03a2e", "!", "step error: the provider failed the request"),
}
#: Above this many rows a clean turn starts collapsed even when nothing was found.
LONG: Final = 60

CSS: Final = """
*{box-sizing:border-box}
body{font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{padding:14px 20px 8px;background:#fff;border-bottom:1px solid #dde1e6}
h1{font-size:18px;margin:0 0 2px}
h2{font-size:14px;margin:0 0 6px}
.sub{color:#5a6270}
.verdict{display:inline-block;margin:6px 0;padding:3px 10px;border-radius:12px;font-weight:600;color:#fff}
.verdict.clean{background:#2e9d57}.verdict.bad{background:#d32f2f}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0 2px;color:#3b4350;font-size:12px}
.legend span{display:inline-flex;align-items:center;gap:5px}
.sw{display:inline-block;width:12px;height:12px;border-radius:3px}
.notes{color:#5a6270;font-size:12px;margin:4px 0 0;padding-left:18px}
.tools{margin:6px 0 0}
.tools button{font:inherit;font-size:12px;padding:2px 8px;margin-right:6px;border:1px solid #c4cad3;border-radius:4px;background:#fff;cursor:pointer}
#findings{padding:8px 20px;background:#fff;border-bottom:1px solid #dde1e6}
.flist.long{max-height:15em;overflow:auto;border:1px solid #eceef1;padding:0 6px}
.finding{border-left:5px solid;padding:5px 10px;margin:4px 0;background:#fff7f6;border-radius:0 4px 4px 0}
.finding .rule{font-weight:700}
.lvl{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:11px;font-weight:600;margin:0 4px}
.finding a{margin-left:8px;font-size:12px}
main{display:grid;grid-template-columns:minmax(0,1.25fr) minmax(0,1fr);gap:14px;padding:12px 20px}
.pane{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px}
.proj{position:sticky;top:0;max-height:100vh;overflow:auto;align-self:start}
.cols{display:grid;gap:10px}
details.turn{border-top:1px solid #eceef1}
details.turn>summary{cursor:pointer;padding:3px 2px;color:#3b4350;font-weight:600;list-style-position:inside}
details.turn.clean>summary{color:#7a8290;font-weight:400}
details.turn.hashit>summary{color:#b71c1c}
.row{display:grid;align-items:center;min-height:22px;border-left:4px solid transparent}
.row:target{outline:2px solid #1565c0}
.row.hit{background:#fdecea;border-left-color:#d32f2f}
.row.point{box-shadow:inset 0 -2px 0 #1565c0}
.ln{color:#8a919c;text-align:right;padding-right:6px;font-variant-numeric:tabular-nums;text-decoration:none;font-size:11px}
.lanes{display:flex;align-self:stretch}
.lane{width:14px;position:relative}
.lane i{position:absolute;left:3px;right:3px;top:0;bottom:0;display:block}
.lane i.s{top:6px;border-radius:5px 5px 0 0}.lane i.e{bottom:6px;border-radius:0 0 5px 5px}.lane i.se{top:5px;bottom:5px;border-radius:5px}
.lane i.x,.lane i.xe{background:none!important;border-left:3px dashed;left:5px;right:auto}
.lane i.xe{bottom:8px}
.lane i.xe::after{content:"";position:absolute;left:-6px;bottom:-6px;width:7px;height:7px;border-radius:50%;background:currentColor}
.lane i.later{background-image:repeating-linear-gradient(45deg,rgba(255,255,255,.55) 0 3px,transparent 3px 6px)}
.lane i.open{border-bottom:0;background-image:linear-gradient(#c0392b,#f5b7b1)}
.lane i.hit{box-shadow:0 0 0 2px #d32f2f}
.lane.step i{background:#cfd8e3;left:5px;right:5px}
.lane.cmp i{background:#2c6fbb;left:5px;right:5px;opacity:.75}
.kind{font-size:11px;color:#5a6270;white-space:nowrap;padding:0 6px}
.mk{display:inline-flex;align-items:center;gap:3px;padding:0 6px;border-radius:9px;color:#fff;font-weight:600}
.text{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding-right:6px}
.k-prompt .text{font-weight:600}
.k-request .text,.k-step-end .text,.k-turn-end .text{color:#8a919c}
.chip{display:inline-block;padding:0 5px;margin-left:4px;border-radius:4px;color:#fff;font-size:11px}
.badge{display:inline-block;padding:0 5px;margin-left:4px;border-radius:4px;color:#fff;font-size:11px;font-weight:700;text-decoration:none}
.fnote{color:#b71c1c;font-weight:600;margin-left:6px}
.row.hit .text{white-space:normal}
.pt{display:inline-block;margin-left:6px;padding:0 6px;border-radius:4px;background:#1565c0;color:#fff;font-size:11px}
.msg{border:1px solid #dde1e6;border-left:4px solid #c4cad3;border-radius:4px;padding:4px 8px;margin:4px 0;background:#fff}
.msg .head{display:flex;gap:6px;align-items:baseline;font-size:11px;color:#5a6270}
.msg .body{white-space:pre-wrap;word-break:break-word;max-height:5.4em;overflow:hidden}
.r-system{border-left-color:#7f8c8d}.r-user{border-left-color:#2c6fbb}.r-assistant{border-left-color:#2e9d57}.r-tool{border-left-color:#e0a100}
.msg.hit{border-color:#d32f2f;border-width:2px 2px 2px 6px;background:#fdecea}
.msg.ghost{border:2px dashed #d32f2f;background:repeating-linear-gradient(135deg,#fff 0 8px,#fdecea 8px 16px);color:#b71c1c;font-weight:600}
.msg.diff{box-shadow:0 0 0 2px #1565c0}
.role{font-weight:700;color:#1d2330;text-transform:uppercase;font-size:10px;letter-spacing:.04em}
.coltitle{font-size:12px;color:#3b4350;font-weight:700;margin-bottom:2px}
.colnote{color:#b71c1c;font-size:12px}
"""

JS: Final = """
(function(){
 function openTo(el){for(var p=el&&el.parentElement;p;p=p.parentElement){if(p.tagName==='DETAILS')p.open=true;}}
 function follow(){var id=location.hash.slice(1);if(!id)return;var el=document.getElementById(id);if(el){openTo(el);el.scrollIntoView({block:'center'});}}
 window.addEventListener('hashchange',follow);follow();
 var fs=[].slice.call(document.querySelectorAll('.finding')),k=-1;
 function next(d){if(!fs.length)return;k=(k+d+fs.length)%fs.length;var f=fs[k];var a=f.querySelector('a.to-row');if(a)location.hash=a.getAttribute('href').slice(1);f.scrollIntoView({block:'nearest'});}
 document.addEventListener('keydown',function(e){if(e.key==='n')next(1);if(e.key==='p')next(-1);});
 var b=document.getElementById('next');if(b)b.onclick=function(){next(1);};
 var x=document.getElementById('expand');if(x)x.onclick=function(){[].forEach.call(document.querySelectorAll('details.turn'),function(d){d.open=true;});};
 var c=document.getElementById('collapse');if(c)c.onclick=function(){[].forEach.call(document.querySelectorAll('details.turn.clean'),function(d){d.open=false;});};
})();
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def render_html(p: Picture) -> str:
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
    w('<meta name="viewport" content="width=device-width,initial-scale=1">')
    w(f"<title>{_e(p.title)}: ctxcontract show</title><style>{CSS}</style></head><body>")
    _header(p, w)
    _findings(p, w)
    w(f'<main style="grid-template-columns:minmax(0,1.25fr) minmax(0,{max(1, len(p.columns))}fr)">')
    _timeline(p, w)
    _projection(p, w)
    w("</main>")
    w(f"<script>{JS}</script></body></html>\n")
    return "".join(out)


def _header(p: Picture, w: _Writer) -> None:
    w(f"<header><h1>{_e(p.title)}</h1><div class=\"sub\">{_e(p.subtitle)}</div>")
    if p.findings:
        worst = min(p.findings, key=_severity)
        counts = ", ".join(f"{sum(1 for f in p.findings if f.level == level)} {level}" for level in LEVEL_COLOURS if any(f.level == level for f in p.findings))
        w(f'<div class="verdict bad" data-verdict="findings">{len(p.findings)} finding(s) ({counts}); the worst: {_e(worst.level)} ({_e(LEVEL_WORDS.get(worst.level, ""))})</div>')
    else:
        w('<div class="verdict clean" data-verdict="clean">clean: nothing found</div>')
    w('<div class="legend" id="legend"><b>calls:</b>')
    for fate, (colour, words) in FATE_COLOURS.items():
        w(f'<span title="{_e(words)}"><i class="sw" style="background:{colour}"></i>{_e(fate)}</span>')
    w('<span title="its result came after it was closed"><i class="sw" style="border:2px dashed #8e44ad"></i>late note</span>')
    w('<span title="later summarized, undone or cleared"><i class="sw" style="background:repeating-linear-gradient(45deg,#2e9d57 0 3px,#bfe3cc 3px 6px)"></i>summarized / undone / cleared later</span>')
    w("</div><div class=\"legend\"><b>events:</b>")
    for kind, (colour, icon, words) in MARKER_STYLE.items():
        w(f'<span title="{_e(words)}"><span class="mk" style="background:{colour}">{icon} {_e(kind.value)}</span></span>')
    w('<span><i class="sw" style="background:#cfd8e3"></i>step (request to step end)</span>')
    w("</div><div class=\"legend\"><b>levels:</b>")
    for level, colour in LEVEL_COLOURS.items():
        w(f'<span><span class="lvl" style="background:{colour}">{level}</span>{_e(LEVEL_WORDS[level])}</span>')
    w("</div>")
    if p.notes:
        w('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in p.notes) + "</ul>")
    w('<div class="tools"><button id="next" type="button">next finding (n)</button><button id="expand" type="button">expand all turns</button><button id="collapse" type="button">collapse clean turns</button></div></header>')


def _findings(p: Picture, w: _Writer) -> None:
    if not p.findings:
        return
    w(f'<section id="findings"><h2>findings <span class="sub">(worst first)</span></h2><div class="flist{" long" if len(p.findings) > 8 else ""}">')
    for f in sorted(p.findings, key=_severity):
        colour = LEVEL_COLOURS.get(f.level, "#555")
        w(f'<div class="finding" id="{f.key}" data-rule="{_e(f.rule)}" data-level="{_e(f.level)}" style="border-left-color:{colour}">')
        w(f'<span class="rule">{_e(f.rule)} {_e(f.title)}</span><span class="lvl" style="background:{colour}">{_e(f.level)}</span>{_e(f.why)}')
        if f.rows:
            w(f'<a class="to-row" href="#r{f.rows[0]}">timeline, line {_e(p.line_of(f.rows[0]) or "-")}</a>')
        for c, pos in f.messages[:3]:
            w(f'<a class="to-msg" href="#m{c}-{pos}">{_e(_col_name(p, c))} message {pos}</a>')
        w("</div>")
    w("</div></section>")


def _severity(f: Finding) -> int:
    return list(LEVEL_COLOURS).index(f.level) if f.level in LEVEL_COLOURS else len(LEVEL_COLOURS)


def _col_name(p: Picture, c: int) -> str:
    if len(p.columns) == 1:
        return "projection"
    return p.columns[c].title.split(":")[0].split(" (")[0]


def _turns(rows: Sequence[Row]) -> list[list[Row]]:
    """Rows grouped by turn: a group starts at each prompt (the first holds what comes before)."""
    groups: list[list[Row]] = [[]]
    for r in rows:
        if r.kind is Kind.PROMPT and groups[-1]:
            groups.append([])
        groups[-1].append(r)
    return [g for g in groups if g]


def _timeline(p: Picture, w: _Writer) -> None:
    hits: dict[int, list[Finding]] = {}
    bar_hits: dict[str, list[Finding]] = {}
    for f in p.findings:
        for hit in f.rows:
            hits.setdefault(hit, []).append(f)
        for key in f.bars:
            bar_hits.setdefault(key, []).append(f)
    grid = _grid(p.bars, len(p.rows))
    steps = _span_grid([s for s in p.spans if s.kind == "step"])
    cmps = _span_grid([s for s in p.spans if s.kind == "compaction"])
    bars = {b.key: b for b in p.bars}
    point = p.point if p.point is not None else len(p.rows)
    lanes = p.lanes
    cols = f"3.4em {14 * (lanes + 2)}px 8.5em minmax(0,1fr)"
    collapse = bool(p.findings) or len(p.rows) > LONG
    w(f'<section class="pane" id="timeline"><h2>timeline <span class="sub">(time runs down; each call a bar from the reply that declared it to the event that settled it)</span></h2>')
    for n, group in enumerate(_turns(p.rows)):
        marked = any(r.index in hits or any(bar_hits.get(k) for k in r.calls) for r in group)
        has_point = any(r.index == point for r in group)
        clean = not marked
        is_open = not (clean and collapse) or has_point
        first = group[0]
        head = f"turn {n}" if first.kind is Kind.PROMPT else "before the first prompt"
        calls = sum(len(r.calls) for r in group)
        found = len({f.key for r in group for f in hits.get(r.index, [])})
        summary = f"{head} · line {first.line or '-'} · {_e(first.text[:80])} · {len(group)} events, {calls} call(s)" + (f", {found} finding(s)" if found else "")
        classes = "turn" + (" clean" if clean else " hashit")
        w(f'<details class="{classes}"{" open" if is_open else ""}><summary>{summary}</summary>')
        for r in group:
            _row(p, r, w, cols, lanes, grid, steps, cmps, bars, hits, bar_hits, point)
        w("</details>")
    w("</section>")


def _row(
    p: Picture,
    r: Row,
    w: _Writer,
    cols: str,
    lanes: int,
    grid: dict[tuple[int, int], tuple[Bar, str]],
    steps: dict[int, str],
    cmps: dict[int, str],
    bars: dict[str, Bar],
    hits: dict[int, list[Finding]],
    bar_hits: dict[str, list[Finding]],
    point: int,
) -> None:
    mine = list(hits.get(r.index, []))
    classes = ["row", "k-" + r.kind.value.replace(" / ", "-").replace(" ", "-")]
    if mine:
        classes.append("hit")
    if r.index == point:
        classes.append("point")
    data = f' data-row="{r.index}" data-line="{r.line}" data-kind="{_e(r.kind.value)}"'
    if mine:
        data += f' data-findings="{" ".join(f.key for f in mine)}"'
    w(f'<div class="{" ".join(classes)}" id="r{r.index}"{data} style="grid-template-columns:{cols}">')
    w(f'<a class="ln" href="#r{r.index}">{r.line or "–"}</a><span class="lanes">')
    w(f'<span class="lane step">{_piece(steps.get(r.index), "")}</span>')
    w(f'<span class="lane cmp">{_piece(cmps.get(r.index), "")}</span>')
    for k in range(lanes):
        got = grid.get((r.index, k))
        if got is None:
            w('<span class="lane"></span>')
            continue
        bar, piece = got
        colour = LATE_COLOUR.get(bar.later.value, "#8e44ad") if piece in ("x", "xe") else FATE_COLOURS[bar.fate.value][0]
        extra = []
        if bar.later in (Later.SUMMARIZED, Later.UNDONE, Later.CLEARED):
            extra.append("later")
        if bar.end is None:
            extra.append("open")
        if bar_hits.get(bar.key):
            extra.append("hit")
        attrs = f' data-call="{_e(bar.id)}" data-bar="{bar.key}" data-fate="{_e(bar.fate.value)}"' if piece in ("s", "se") else ""
        w(f'<span class="lane" title="{_e(bar.describe(p.line_of))}"><i class="{piece} {" ".join(extra)}" style="background-color:{colour};color:{colour}"{attrs}></i></span>')
    w("</span>")
    if r.kind in MARKERS:
        colour, icon, words = MARKER_STYLE[r.kind]
        w(f'<span class="kind"><span class="mk" style="background:{colour}" title="{_e(words)}">{icon} {_e(r.kind.value)}</span></span>')
    else:
        w(f'<span class="kind">{_e(r.kind.value)}</span>')
    w(f'<span class="text" title="{_e(r.text)}">{_e(r.text)}')
    for key in r.calls:
        declared = bars.get(key)
        if declared is not None:
            w(f'<span class="chip" style="background:{FATE_COLOURS[declared.fate.value][0]}" title="{_e(declared.describe(p.line_of))}">{_e(declared.id)} {_e(declared.name)}</span>')
    if r.about:
        w(f'<span class="chip" style="background:#5a6270">for {_e(r.about)}</span>')
    for f in mine:
        w(f'<a class="badge" href="#{f.key}" style="background:{LEVEL_COLOURS.get(f.level, "#555")}" title="{_e(f.why)}">{_e(f.rule)} {_e(f.level)}</a>')
    said: set[str] = set()
    for f in mine:
        for row, words in f.notes:
            if row == r.index and words not in said:
                said.add(words)
                w(f'<span class="fnote" data-note="{f.key}">⚠ {_e(words)}</span>')
    if r.index == point:
        w(f'<span class="pt" title="{_e(p.point_label)}">▶ projection shown</span>')
    w("</span></div>")


LATE_COLOUR: Final = {"late note": "#8e44ad", "late result dropped": "#9aa0a6"}


def _piece(piece: str | None, extra: str) -> str:
    return "" if piece is None else f'<i class="{piece} {extra}"></i>'


def _grid(bars: Iterable[Bar], last: int) -> dict[tuple[int, int], tuple[Bar, str]]:
    """(row, lane) -> the bar there and its piece: s(tart), m(iddle), e(nd), se (one row), x/xe (late extension)."""
    grid: dict[tuple[int, int], tuple[Bar, str]] = {}
    for b in bars:
        end = b.end if b.end is not None else last
        for row in range(b.start, end + 1):
            piece = "se" if b.start == end and b.end is not None else "s" if row == b.start else "e" if row == end and b.end is not None else "m"
            grid[(row, b.lane)] = (b, piece)
        if b.later in (Later.LATE_NOTE, Later.LATE_DROPPED) and b.later_row is not None and b.end is not None:
            for row in range(b.end + 1, b.later_row + 1):
                grid[(row, b.lane)] = (b, "xe" if row == b.later_row else "x")
    return grid


def _span_grid(spans: Iterable[Span]) -> dict[int, str]:
    grid: dict[int, str] = {}
    for s in spans:
        for row in range(s.start, s.end + 1):
            grid[row] = "se" if s.start == s.end else "s" if row == s.start else "e" if row == s.end else "m"
    return grid


def _projection(p: Picture, w: _Writer) -> None:
    marks: dict[tuple[int, int], list[Finding]] = {}
    for f in p.findings:
        for cm in f.messages:
            marks.setdefault(cm, []).append(f)
    w(f'<section class="pane proj" id="projection"><h2>projection <span class="sub">{_e(p.point_label)}</span></h2>')
    w(f'<div class="cols" style="grid-template-columns:repeat({len(p.columns)},minmax(0,1fr))">')
    for c, col in enumerate(p.columns):
        w(f'<div class="col" data-column="{c}"><div class="coltitle">{_e(col.title)}</div>')
        if col.note:
            w(f'<div class="colnote">{_e(col.note)}</div>')
        if not col.messages:
            w('<div class="sub">(no messages)</div>')
        for pos, s in enumerate(col.messages):
            mine = marks.get((c, pos), [])
            classes = ["msg", f"r-{s.role}"]
            if s.ghost:
                classes.append("ghost")
            if mine:
                classes.append("hit")
            if p.first_difference is not None and pos == p.first_difference:
                classes.append("diff")
            data = f' data-role="{_e(s.role)}"'
            if s.row is not None:
                data += f' data-from="{s.row}"'
            if mine:
                data += f' data-findings="{" ".join(f.key for f in mine)}"'
            if s.call_id:
                data += f' data-call="{_e(s.call_id)}"'
            w(f'<div class="{" ".join(classes)}" id="m{c}-{pos}"{data}><div class="head">')
            w(f'<span>[{s.index if s.index is not None else "–"}]</span><span class="role">{"✗ missing" if s.ghost else _e(s.role)}</span>')
            if s.call_id:
                w(f"<span>for <b>{_e(s.call_id)}</b></span>")
            for flag in s.flags:
                w(f"<span>{_e(flag)}</span>")
            if s.row is not None:
                w(f'<a class="from" href="#r{s.row}">from line {_e(p.line_of(s.row) or "–")}</a>')
            if p.first_difference is not None and pos == p.first_difference:
                w('<span style="color:#1565c0;font-weight:700">first difference</span>')
            for f in mine:
                w(f'<a class="badge" href="#{f.key}" style="background:{LEVEL_COLOURS.get(f.level, "#555")}" title="{_e(f.why)}">{_e(f.rule)} {_e(f.level)}</a>')
            w(f'</div><div class="body">{_e(s.text)}')
            for cid, name in s.calls:
                w(f'<span class="chip" style="background:#2e9d57">{_e(cid)} {_e(name)}</span>')
            w("</div></div>")
        w("</div>")
    w("</div></section>")
