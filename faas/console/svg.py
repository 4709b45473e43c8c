"""Inline SVG drawn on the server: a bar chart of counts, and a flow's states as a graph.

Both are plain markup (no script), so they show with JavaScript off and scale with the page.
"""
from __future__ import annotations

from html import escape
from typing import Any


def bar_chart(counts: list[int], *, width: int = 360, height: int = 80, label: str = "tasks per minute") -> str:
    n = max(1, len(counts))
    top = max(counts) if counts and max(counts) > 0 else 1
    bw = width / n
    bars = []
    for i, v in enumerate(counts):
        h = 0 if v == 0 else max(1.5, (height - 4) * v / top)
        mins = n - i
        bars.append(f'<rect x="{i * bw:.1f}" y="{height - h:.1f}" width="{max(bw - 1, 0.5):.1f}" '
                    f'height="{h:.1f}"><title>{v} task(s), {mins} to {mins - 1} min ago</title></rect>')
    # No text inside: the chart stretches to its box (preserveAspectRatio none); labels go in HTML.
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
            f'aria-label="{escape(label)}: {sum(counts)} in the last {n} minutes, '
            f'at most {max(counts or [0])} a minute">'
            f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" class="base"/>'
            + "".join(bars) + "</svg>")


# -- flow graphs ----------------------------------------------------------------------------

def _next_states(state: dict) -> list[tuple[str, str]]:
    """(target, label) edges out of one state of a definition (ASL/Globus Flows)."""
    out = []
    if state.get("Next"):
        out.append((state["Next"], ""))
    if state.get("Default"):
        out.append((state["Default"], "default"))
    for i, ch in enumerate(state.get("Choices") or []):
        if isinstance(ch, dict) and ch.get("Next"):
            out.append((ch["Next"], f"choice {i + 1}"))
    for c in state.get("Catch") or []:
        if isinstance(c, dict) and c.get("Next"):
            out.append((c["Next"], "catch"))
    return out


def layers(definition: dict) -> list[list[str]]:
    """States in layers by their shortest distance from StartAt (unreachable ones last)."""
    states = definition.get("States") or {}
    start = definition.get("StartAt")
    depth = {start: 0} if start in states else {}
    frontier: list[Any] = [start] if start in states else []
    while frontier:
        nxt = []
        for s in frontier:
            for t, _ in _next_states(states[s]):
                if t in states and t not in depth:
                    depth[t] = depth[s] + 1
                    nxt.append(t)
        frontier = nxt
    last = max(depth.values(), default=-1) + 1
    for s in states:
        depth.setdefault(s, last)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for s in states:                       # definition order within a layer
        out[depth[s]].append(s)
    return [layer for layer in out if layer]


def flow_graph(definition: dict, highlight: dict[str, str] | None = None) -> str:
    """States as boxes (one row per layer, top to bottom) with arrows for Next, Choices, Default
    and Catch; ``highlight`` maps a state name to a CSS class (e.g. the run's current state)."""
    states = definition.get("States") or {}
    rows = layers(definition)
    bw, bh, gx, gy = 150, 40, 24, 46
    cols = max((len(r) for r in rows), default=1)
    width = max(cols * (bw + gx) + gx, 200)
    height = len(rows) * (bh + gy) + gy
    pos = {}
    for ri, row in enumerate(rows):
        offset = (width - (len(row) * (bw + gx) - gx)) / 2
        for ci, s in enumerate(row):
            pos[s] = (offset + ci * (bw + gx), gy / 2 + ri * (bh + gy))
    edges, boxes = [], []
    for s, st in states.items():
        x, y = pos[s]
        for t, lab in _next_states(st):
            if t not in pos:
                continue
            tx, ty = pos[t]
            x1, y1, x2, y2 = x + bw / 2, y + bh, tx + bw / 2, ty
            if ty <= y:           # a loop back up: leave from the side
                x1, y1, x2, y2 = x + bw, y + bh / 2, tx + bw, ty + bh / 2
                path = f"M{x1:.0f},{y1:.0f} C{x1 + 40:.0f},{y1:.0f} {x2 + 40:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            else:
                path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{y1 + 20:.0f} {x2:.0f},{y2 - 20:.0f} {x2:.0f},{y2:.0f}"
            css = "edge catch" if lab == "catch" else "edge"
            edges.append(f'<path d="{path}" class="{css}" marker-end="url(#arrow)"/>')
            if lab:
                edges.append(f'<text x="{(x1 + x2) / 2 + 4:.0f}" y="{(y1 + y2) / 2:.0f}" '
                             f'class="edge-label">{escape(lab)}</text>')
        kind = str(st.get("Type", "?"))
        cls = f"state {kind.lower()} {(highlight or {}).get(s, '')}".strip()
        end = " (end)" if st.get("End") or kind in ("Fail", "Succeed") else ""
        boxes.append(f'<g class="{escape(cls)}"><rect x="{x:.0f}" y="{y:.0f}" width="{bw}" height="{bh}" rx="6"/>'
                     f'<text x="{x + bw / 2:.0f}" y="{y + 16:.0f}" class="name">{escape(_short(s))}</text>'
                     f'<text x="{x + bw / 2:.0f}" y="{y + 31:.0f}" class="kind">{escape(kind + end)}</text>'
                     f'<title>{escape(s)}: {escape(kind)}</title></g>')
    start = ""
    if definition.get("StartAt") in pos:
        sx, sy = pos[definition["StartAt"]]
        start = f'<circle cx="{sx + bw / 2:.0f}" cy="{sy - 12:.0f}" r="5" class="start"/>'
    return (f'<svg class="flowgraph" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" role="img" '
            f'aria-label="flow graph of {len(states)} states">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>'
            + "".join(edges) + "".join(boxes) + start + "</svg>")


def _short(name: str, n: int = 20) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"
