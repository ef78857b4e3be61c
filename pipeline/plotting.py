"""Matplotlib with Chinese text: find the CJK font the install provides and make it the default.

Matplotlib's default font (DejaVu Sans) has no CJK glyphs, so Chinese labels come out as boxes
with a "Glyph … missing from font(s)" warning. ``scripts/install-system-deps.sh`` installs
fonts-noto-cjk; :func:`use_cjk_font` registers it (as the digest's charts do) and puts it first in
the sans-serif list, so pyplot figures in a notebook show Chinese.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported lazily: `import pipeline` must stay fast
    import pandas as pd
    from matplotlib.axes import Axes


class FontNotFoundError(RuntimeError):
    """No CJK font is installed; Chinese labels would be boxes."""


def cjk_font_family() -> str:
    """Name of an installed CJK font family, registered with matplotlib.

    The digest's charts find and register the font (``pipeline.digest.charts.cjk_font``); this
    reuses that so the notebook and the digest draw with the same face. Raises
    :class:`FontNotFoundError` with the fix when none is installed.
    """
    from matplotlib import font_manager

    from .digest.charts import cjk_font

    family = cjk_font()
    if not family:
        raise FontNotFoundError(
            "no CJK font found for matplotlib; install one (bash scripts/install-system-deps.sh "
            "installs fonts-noto-cjk) so Chinese labels are not drawn as boxes")
    # a Pan-CJK collection's first face is often the Japanese one (Noto Sans CJK JP); its simplified
    # Chinese sibling in the same file draws mainland glyph shapes
    sc = family.rsplit(" ", 1)[0] + " SC"
    if family.endswith((" JP", " KR", " TC", " HK")) and any(
            f.name == sc for f in font_manager.fontManager.ttflist):
        return sc
    return family


def use_cjk_font() -> str:
    """Make the CJK font matplotlib's default sans-serif font; returns the family name."""
    import matplotlib as mpl

    fam = cjk_font_family()
    rest = [f for f in mpl.rcParams["font.sans-serif"] if f != fam]
    mpl.rcParams["font.sans-serif"] = [fam, *rest]
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212 MINUS SIGN
    return fam


def heatmap(table: pd.DataFrame, ax: Axes | None = None, title: str = "", cmap: str = "YlOrRd",
            annotate: bool = True, fmt: str = "{:g}") -> Axes:
    """Draw a numeric table (rows × columns, e.g. unit × role) as a heat map with its labels."""
    import matplotlib.pyplot as plt
    import numpy as np

    use_cjk_font()
    values = table.to_numpy(dtype=float, na_value=np.nan)
    if ax is None:
        w = max(6.0, 0.55 * table.shape[1] + 2.5)
        h = max(3.0, 0.4 * table.shape[0] + 1.5)
        _, ax = plt.subplots(figsize=(w, h))
    im = ax.imshow(values, cmap=cmap, aspect="auto")
    ax.set_xticks(range(table.shape[1]), [_label(c) for c in table.columns], rotation=60, ha="right")
    ax.set_yticks(range(table.shape[0]), [_label(i) for i in table.index])
    if annotate and values.size and values.size <= 600:  # numbers stay readable only on small tables
        top = np.nanmax(values) if np.isfinite(values).any() else 0
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v) and v:
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="white" if v > top * 0.6 else "black")
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    if title:
        ax.set_title(title)
    return ax


def _label(key: object) -> str:
    """A tick label for a plain or MultiIndex key ("组织 · gap")."""
    if isinstance(key, tuple):
        return " · ".join(str(k) for k in key)
    return str(key)
