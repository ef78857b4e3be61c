"""Digest: the season's findings as one self-contained HTML page (jinja2, report text escaped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ..analyze.matrix import content_sentences

ROLE_NAMES = {"strength": "成绩与做法", "gap": "问题与差距", "cause": "原因", "measure": "措施与打算",
              "other": "其他"}
ROLES = ("strength", "gap", "cause", "measure")


def _env() -> Environment:
    return Environment(loader=PackageLoader("pipeline.digest", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                       lstrip_blocks=True)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with missing values as None (templates cannot test pandas' NA)."""
    return df.astype(object).where(df.notna(), None).to_dict("records")


def unit_profiles(sentences: pd.DataFrame, per_role: int = 8) -> list[dict[str, Any]]:
    """Per unit: counts and the most confident quotes of each role."""
    s = content_sentences(sentences)
    out = []
    for unit, g in s.groupby("unit", sort=True):
        roles = {}
        for role in ROLES:
            r = g[g["label"] == role].sort_values(["confidence", "idx"], ascending=[False, True])
            roles[role] = {"n": int(len(r)), "quotes": records(r.head(per_role))}
        out.append({"unit": unit or "(未识别)", "n": int(len(g)), "roles": roles})
    return out


def render_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> str:
    docs = frames["documents"]
    matrix = frames.get("matrix", pd.DataFrame(columns=["unit", "label", "n"]))
    pivot = (matrix.groupby(["unit", "label"])["n"].sum().unstack(fill_value=0)
             .reindex(columns=list(ROLES) + ["other"], fill_value=0)) if len(matrix) else None
    return _env().get_template("digest.html.j2").render(
        meta=meta, documents=records(docs), articles=records(frames["articles"]),
        units=unit_profiles(frames["sentences"]),
        pivot=[] if pivot is None else [(u, row.to_dict()) for u, row in pivot.iterrows()],
        roles=ROLES, role_names=ROLE_NAMES,
    )


def write_digest(frames: dict[str, pd.DataFrame], meta: dict[str, Any], folder: Path) -> list[str]:
    (folder / "digest.html").write_text(render_html(frames, meta), encoding="utf-8")
    return ["digest.html"]
