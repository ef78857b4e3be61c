"""Charts as inline SVG (matplotlib, no pyplot state), with a CJK font registered explicitly."""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING

import pandas as pd

from .common import ROLE_NAMES

if TYPE_CHECKING:  # matplotlib is imported when a chart is drawn: a rerun whose charts are memoised
    from matplotlib.figure import Figure  # never loads it (~0.3 s)

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


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    # glyphs as paths: the browser needs no font, and the page stays self-contained
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined in HTML


def heatmap_svg(table: pd.DataFrame, title: str, fmt: str = "{:.0%}", cmap: str = "Reds") -> str:
    """A heat map of a numeric table (rows × columns) as an SVG string; '' when empty."""
    if table.empty:
        return ""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    family = cjk_font()
    rc = {"font.family": [family, "DejaVu Sans"] if family else ["DejaVu Sans"], "svg.hashsalt": "huibian"}
    with rc_context(rc):
        n_rows, n_cols = table.shape
        fig = Figure(figsize=(1.2 + 0.9 * n_cols, 0.9 + 0.32 * n_rows))
        ax = fig.add_subplot()
        values = table.to_numpy(dtype=float)
        im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=0)
        ax.set_xticks(range(n_cols), [str(c) for c in table.columns], fontsize=9)
        ax.set_yticks(range(n_rows), [str(i) for i in table.index], fontsize=9)
        ax.xaxis.tick_top()
        top = values.max() if values.size else 0
        for i in range(n_rows):
            for j in range(n_cols):
                v = values[i, j]
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="white" if top and v > 0.6 * top else "#222")
        ax.set_title(title, fontsize=11, pad=22)
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        return _svg(fig)


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
