"""digest.html: one self-contained page (jinja2 with autoescape; CSS, JS and SVG charts inline).

Report text reaches the page two ways, both escaped: through jinja2's autoescape in the markup, and
as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as \\u escapes
so no report text can close the script element.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from . import charts
from .common import (
    ROLE_NAMES,
    ROLES,
    body_sentences,
    clean_text,
    frame,
    problem_clusters,
    records,
    role_pivot,
    source_names,
    theme_matrix,
    unit_name,
    unit_profiles,
)

MAX_TABLE_ROWS = 500  # long tables (figures, copies) are cut here in the page; tables.xlsx has all


def _env() -> Environment:
    return Environment(loader=PackageLoader("pipeline.digest", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                       lstrip_blocks=True)


def script_json(obj: Any) -> Markup:
    """JSON safe to place inside a <script> element whatever the strings hold."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # U+2028/2029 are legal in JSON but were line terminators in older JS engines
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def _int(v: Any) -> int | None:
    try:
        return None if v is None or pd.isna(v) else int(v)
    except (TypeError, ValueError):
        return None


def sentence_payload(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The searchable sentences, compact: column lists, not one object per sentence."""
    s = body_sentences(frames)
    names = source_names(frames)
    units = sorted(s["unit"].unique().tolist()) if len(s) else []
    docs = sorted(s["doc_id"].astype(str).unique().tolist()) if len(s) else []
    u_ix = {u: i for i, u in enumerate(units)}
    d_ix = {d: i for i, d in enumerate(docs)}
    cols = {c: (s[c] if c in s.columns else pd.Series([None] * len(s), index=s.index))
            for c in ("theme", "page", "section", "idx")}
    rows = [[d_ix[str(d)], _int(i), u_ix[u], clean_text(lab), clean_text(th), _int(p), clean_text(t),
             clean_text(sec)]
            for d, i, u, lab, th, p, t, sec in zip(s["doc_id"], cols["idx"], s["unit"], s["label"],
                                                     cols["theme"], cols["page"], s["text"],
                                                     cols["section"], strict=True)]
    return {"units": units, "docs": [[d, names.get(d, d)] for d in docs],
            "fields": ["doc", "idx", "unit", "label", "theme", "page", "text", "section"], "rows": rows,
            "roles": ROLE_NAMES}


def heat_tables(frames: dict[str, pd.DataFrame]) -> dict[str, Any] | None:
    """unit × theme counts per role (and over all roles), with a 0–1 intensity per cell."""
    m = theme_matrix(frames)
    if m is None:
        return None
    themes = sorted(m["theme"].unique().tolist(), key=lambda t: (t == "其他", t))
    units = sorted(m["unit"].unique().tolist())
    tables = {}
    for role in ("all", *ROLES):
        sub = m[m["label"] != "other"] if role == "all" else m[m["label"] == role]
        p = (sub.pivot_table(index="unit", columns="theme", values="n", aggfunc="sum", fill_value=0)
             .reindex(index=units, columns=themes, fill_value=0))
        top = max(int(p.to_numpy().max()) if p.size else 0, 1)
        tables[role] = [(u, [(int(v), round(int(v) / top, 3)) for v in p.loc[u]]) for u in units]
    return {"themes": themes, "tables": tables}


def generic_table(df: pd.DataFrame | None, limit: int = MAX_TABLE_ROWS) -> dict[str, Any] | None:
    """Any frame as header + rows of text (for tables whose columns are still settling)."""
    if df is None:
        return None
    head = df.head(limit)
    rows = [[clean_text(v) for v in row] for row in head.astype(object).itertuples(index=False)]
    return {"columns": [str(c) for c in df.columns], "rows": rows, "n": int(len(df))}


def render_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> str:
    names = source_names(frames)
    pivot = role_pivot(frames)
    docs = frame(frames, "documents", ("doc_id",))
    arts = frame(frames, "articles", ("article_id",))
    copies = frame(frames, "copies", ("doc_id_a", "doc_id_b", "text"))
    copy_rows = []
    if copies is not None:
        for r in records(copies.head(MAX_TABLE_ROWS)):
            r["a"] = names.get(str(r["doc_id_a"]), r["doc_id_a"])
            r["b"] = names.get(str(r["doc_id_b"]), r["doc_id_b"])
            copy_rows.append(r)
    figures = frame(frames, "figures", ("unit", "text"))
    fig_rows = []
    if figures is not None:
        for r in records(figures.head(MAX_TABLE_ROWS)):
            r["unit"] = unit_name(r.get("unit"))
            r["source"] = names.get(str(r.get("doc_id")), r.get("doc_id") or "")
            fig_rows.append(r)
    payload = sentence_payload(frames)
    themes = sorted({r[4] for r in payload["rows"] if r[4]})
    role_totals = {r: int(pivot[r].sum()) if r in pivot.columns else 0 for r in (*ROLES, "other")}
    return _env().get_template("digest.html.j2").render(
        meta=meta, documents=records(docs) if docs is not None else [],
        articles=records(arts) if arts is not None else [],
        units=unit_profiles(frames), names=names,
        pivot=[(u, row.to_dict()) for u, row in pivot.iterrows()], role_totals=role_totals,
        roles=ROLES, role_names=ROLE_NAMES, themes=themes,
        chart_roles=Markup(charts.role_share_chart(pivot)),
        chart_themes=Markup(charts.theme_role_chart(theme_matrix(frames))),
        heat=heat_tables(frames), problems=problem_clusters(frames, names),
        copies=copy_rows, n_copies=0 if copies is None else len(copies),
        figures=fig_rows, n_figures=0 if figures is None else len(figures),
        compare=generic_table(frame(frames, "compare")), max_rows=MAX_TABLE_ROWS,
        sentences_json=script_json(payload),
    )
