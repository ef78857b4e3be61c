"""Charts as inline SVG written by hand (no matplotlib on the digest's path); :func:`cjk_font` finds
and registers a CJK font for matplotlib users (``pipeline.plotting``, the notebook)."""

from __future__ import annotations

import html
import math
import zlib
from functools import cache

import numpy as np
import pandas as pd

from .common import ROLE_NAMES

# preferred CJK faces, best first (fonts-noto-cjk, then WenQuanYi); any other CJK face is the fallback
_PREFERRED = ("NotoSansCJK-Regular", "NotoSansCJKsc-Regular", "wqy-microhei", "wqy-zenhei",
              "NotoSerifCJK-Regular")


@cache
def cjk_font() -> str | None:
    """Family name of a registered CJK font, or None (then Chinese would render as boxes)."""
    from matplotlib import font_manager

    files = font_manager.findSystemFonts()
    ranked = sorted((f for f in files if any(p.lower() in f.lower() for p in (*_PREFERRED, "cjk"))),
                    key=lambda f: next((i for i, p in enumerate(_PREFERRED) if p.lower() in f.lower()),
                                       len(_PREFERRED)))
    for path in ranked:
        try:
            # addfont makes the face usable even when matplotlib's font cache predates it
            font_manager.fontManager.addfont(path)
            family = font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
        # a Pan-CJK collection's first face is often Japanese; its SC sibling draws mainland shapes
        sc = family.rsplit(" ", 1)[0] + " SC"
        if family.endswith((" JP", " KR", " TC", " HK")) and any(
                f.name == sc for f in font_manager.fontManager.ttflist):
            return sc
        return family
    return None


# ColorBrewer's 9-class ramps, the anchors matplotlib's "Blues"/"Reds" interpolate between
_RAMPS: dict[str, tuple[str, ...]] = {
    "Blues": ("f7fbff", "deebf7", "c6dbef", "9ecae1", "6baed6", "4292c6", "2171b5", "08519c", "08306b"),
    "Reds": ("fff5f0", "fee0d2", "fcbba1", "fc9272", "fb6a4a", "ef3b2c", "cb181d", "a50f15", "67000d"),
}
_FONT = ("'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei','PingFang SC',"
         "'DejaVu Sans',sans-serif")


def ramp_color(cmap: str, x: float) -> str:
    """The colour matplotlib's colormap gives ``x`` in [0, 1] (its 256-entry table, linear between
    the ramp's anchors)."""
    anchors = _RAMPS[cmap]
    t = min(max(int(x * 256), 0), 255) / 255 * (len(anchors) - 1)
    i = min(int(t), len(anchors) - 2)
    f = t - i
    a, b = bytes.fromhex(anchors[i]), bytes.fromhex(anchors[i + 1])
    return "#" + "".join(f"{round(u + (v - u) * f):02x}" for u, v in zip(a, b, strict=True))


def _text_width(text: str, size: float) -> float:
    """Rough advance width of a label: CJK and full-width characters one em, others ~0.6 em."""
    return sum(size if ord(ch) > 0x2E7F else 0.6 * size for ch in text)


def _ticks(top: float) -> list[float]:
    """2–6 round colour-bar ticks from 0 to ``top`` (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if top <= 0:
        return [0.0]
    mag = 10 ** math.floor(math.log10(top / 5))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if top / (m * mag) <= 5)
    return [k * step for k in range(int(top / step + 1e-9) + 1)]


def _x(text: str) -> str:
    return html.escape(text, quote=True)


def heatmap_svg(table: pd.DataFrame, title: str, fmt: str = "{:.0%}", cmap: str = "Reds") -> str:
    """A heat map of a numeric table (rows × columns) as an SVG string written by hand; '' when empty.

    Issue 8: matplotlib took ~0.8 s (import + draw) for the theme chart, redrawn on any rerun whose
    counts changed. Same picture: one cell per value coloured on matplotlib's ramp (vmin 0, vmax the
    table's maximum), the value printed in it (white above 60 % of the maximum), column labels on top,
    row labels on the left, the title and a colour bar; labels are text (the page's fonts draw them).
    """
    if table.empty:
        return ""
    values = table.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    finite = np.isfinite(values)
    top = float(values[finite].max()) if finite.any() else 0.0  # (NaN cells stay blank, as imshow left them)
    cw, ch, lab, small = 64.0, 22.0, 9.0, 7.0  # cell size and font sizes, in pt
    rows = [str(i) for i in table.index]
    cols = [str(c) for c in table.columns]
    left = 6 + max((_text_width(r, lab) for r in rows), default=0) + 6
    head = 6 + 11 + 10 + lab + 8  # title, gap, column labels, gap
    grid_w, grid_h = cw * n_cols, ch * n_rows
    bar_x = left + grid_w + 10
    ticks = _ticks(top)
    bar_w = 10 + 4 + max(_text_width(fmt.format(t), lab) for t in ticks) + 6
    width, height = bar_x + bar_w, head + grid_h + 6
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.1f}pt" height="{height:.1f}pt" '
           f'viewBox="0 0 {width:.1f} {height:.1f}" font-family="{_FONT}" role="img" aria-label="{_x(title)}">',
           f'<rect width="{width:.1f}" height="{height:.1f}" fill="#fff"/>',
           f'<text x="{left + grid_w / 2:.1f}" y="17" font-size="11" text-anchor="middle">{_x(title)}</text>']
    for j, c in enumerate(cols):
        out.append(f'<text x="{left + cw * (j + 0.5):.1f}" y="{head - 8:.1f}" font-size="{lab:g}" '
                   f'text-anchor="middle">{_x(c)}</text>')
    for i, r in enumerate(rows):
        y = head + ch * i
        out.append(f'<text x="{left - 6:.1f}" y="{y + ch / 2 + lab / 3:.1f}" font-size="{lab:g}" '
                   f'text-anchor="end">{_x(r)}</text>')
        for j, c in enumerate(cols):
            v = values[i, j]
            label = _x(fmt.format(v))
            ink = "white" if top and v > 0.6 * top else "#222"
            out.append(f'<g><title>{_x(r)} · {_x(c)}：{label}</title>'
                       f'<rect x="{left + cw * j:.1f}" y="{y:.1f}" width="{cw:g}" height="{ch:g}" '
                       f'fill="{ramp_color(cmap, v / top if top else 0.0) if math.isfinite(v) else "none"}"/>'
                       f'<text x="{left + cw * (j + 0.5):.1f}" y="{y + ch / 2 + small / 3:.1f}" '
                       f'font-size="{small:g}" text-anchor="middle" fill="{ink}">{label}</text></g>')
    out.append(f'<rect x="{left:.1f}" y="{head:.1f}" width="{grid_w:g}" height="{grid_h:g}" fill="none" '
               'stroke="#000" stroke-width="0.8"/>')
    # the colour bar: the ramp bottom (0) to top (maximum), ticks on its right
    stops = "".join(f'<stop offset="{k / 8:.3f}" stop-color="#{c}"/>' for k, c in enumerate(_RAMPS[cmap]))
    gid = f"bar-{cmap}-{zlib.crc32(title.encode()):08x}"  # stable: the page must be reproducible
    out.append(f'<defs><linearGradient id="{gid}" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient></defs>'
               f'<rect x="{bar_x:.1f}" y="{head:.1f}" width="10" height="{grid_h:g}" fill="url(#{gid})" '
               'stroke="#000" stroke-width="0.8"/>')
    for t in ticks:
        ty = head + grid_h * (1 - (t / top if top else 0.0))
        out.append(f'<line x1="{bar_x + 10:.1f}" x2="{bar_x + 13:.1f}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#000" '
                   f'stroke-width="0.8"/><text x="{bar_x + 15:.1f}" y="{ty + lab / 3:.1f}" font-size="{lab:g}">'
                   f'{_x(fmt.format(t))}</text>')
    out.append("</svg>\n")  # (ends as matplotlib's did: the page around the chart is unchanged)
    return "".join(out)


def role_share_chart(pivot: pd.DataFrame) -> str:
    """Unit × role heat map: each role's share of the unit's report sentences."""
    if pivot.empty:
        return ""
    shares = pivot.div(pivot.sum(axis=1).replace(0, 1), axis=0)
    shares.columns = [ROLE_NAMES.get(c, c) for c in shares.columns]
    return heatmap_svg(shares, "各单位句子的角色构成（占比）")


def theme_role_chart(matrix: pd.DataFrame | None) -> str:
    """Theme × role heat map of sentence counts across the season."""
    if matrix is None or matrix.empty:
        return ""
    t = matrix[matrix["label"] != "other"].pivot_table(index="theme", columns="label", values="n",
                                                       aggfunc="sum", fill_value=0)
    if t.empty:
        return ""
    t = t.reindex(columns=[c for c in ROLE_NAMES if c in t.columns and c != "other"])
    t.columns = [ROLE_NAMES[c] for c in t.columns]
    return heatmap_svg(t, "主题 × 角色（句数）", fmt="{:.0f}", cmap="Blues")
