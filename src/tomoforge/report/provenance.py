"""The provenance graph of a project as inline SVG: jobs in rows by depth (top down), arrows along links."""

from __future__ import annotations

from html import escape

from tomoforge.project.store import Project

BOX_W, BOX_H, GAP_X, GAP_Y = 170, 38, 24, 22


def provenance_svg(project: Project) -> str:
    jobs = project.jobs()
    sources = {j.id: sorted({sj for refs in project.links(j.id).values() for sj, _ in refs}) for j in jobs}
    depth: dict[int, int] = {}
    for j in jobs:  # ids increase downstream, so one pass suffices
        depth[j.id] = 1 + max((depth.get(s, 0) for s in sources[j.id]), default=-1)
    columns: dict[int, list[int]] = {}
    for j in jobs:
        columns.setdefault(depth[j.id], []).append(j.id)
    pos = {jid: (10 + i * (BOX_W + GAP_X), 10 + d * (BOX_H + GAP_Y))
           for d, ids in columns.items() for i, jid in enumerate(ids)}
    width = 20 + max((len(v) for v in columns.values()), default=1) * (BOX_W + GAP_X)
    height = 20 + (max(columns, default=0) + 1) * (BOX_H + GAP_Y)
    colour = {"done": "#d8f0d8", "running": "#fff3c4", "failed": "#f7d0d0", "pending": "#eeeeee"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="provenance">',
             '<defs><marker id="arr" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
             '<path d="M0,0 L8,4 L0,8 z" fill="#666"/></marker></defs>']
    for j in jobs:
        x, y = pos[j.id]
        for s in sources[j.id]:
            sx, sy = pos[s]
            parts.append(f'<line x1="{sx + BOX_W / 2}" y1="{sy + BOX_H}" x2="{x + BOX_W / 2}" y2="{y}" '
                         'stroke="#666" marker-end="url(#arr)"/>')
    for j in jobs:
        x, y = pos[j.id]
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{colour[j.status]}" '
                     'stroke="#555"/>')
        parts.append(f'<text x="{x + 6}" y="{y + 15}" font-size="11" font-weight="bold">{j.id:03d} '
                     f'{escape(j.step)}</text>')
        parts.append(f'<text x="{x + 6}" y="{y + 30}" font-size="10">{escape(j.status)}, '
                     f'{len(project.units(j.id))} units</text>')
    parts.append("</svg>")
    return "".join(parts)
