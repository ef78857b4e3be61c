"""digest.html: one self-contained page (jinja2 with autoescape; CSS, JS and SVG charts inline).

Report text reaches the page two ways, both escaped: through jinja2's autoescape in the markup, and
as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as \\u escapes
so no report text can close the script element.

Season scale (issue 8: 1,000 reports, ~450,000 sentences): the page stays under ~20 MB. Its search
holds every report sentence up to MAX_EMBEDDED, past that the coded ones (strength/gap/cause/measure)
and past that the most confident of each unit × role in turn (quoted sentences always), and says so;
tables.xlsx and sentences.parquet hold all. Quotes per role shrink as units grow, recurring problems
and chart rows are capped, heat-map cells are coloured by class. Selection works on a few small
columns; text is fetched only for the rows shown, and the page is streamed to disk by jinja2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from . import charts
from .common import (
    LIGHT_COLUMNS,
    ROLE_NAMES,
    ROLES,
    XML_ILLEGAL,
    body_sentences,
    clean_text,
    fetch_columns,
    frame,
    problem_clusters,
    quotes_per_role,
    records,
    role_pivot,
    source_names,
    theme_matrix,
    unit_name,
    unit_profiles,
)

MAX_TABLE_ROWS = 500  # long tables (figures, copies) are cut here in the page; tables.xlsx has all
# Page size at season scale (issue 8: 1,000 reports, ~450,000 sentences) stays under ~20 MB:
MAX_EMBEDDED = 40_000  # searchable sentences in the page's JSON (~200 bytes each)
MAX_CLUSTERS, MAX_MEMBERS = 150, 30  # recurring problems shown, members listed per problem
MAX_CLUSTER_UNITS = 30  # unit names spelled out in a problem's summary line
MAX_CHART_UNITS = 40  # rows of the unit × role chart (largest units); the table below has all
HEAT_LEVELS = 10  # heat-map cells carry a class per intensity step, not an inline style each


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


def _ints(s: pd.Series) -> list[int | None]:
    """A column as Python ints with None for missing (vectorised, no per-row isna)."""
    return [None if v is None else int(v) for v in s.astype(object).where(s.notna(), None).tolist()]


def _texts(s: pd.Series) -> list[str]:
    """A text column cleaned for XML/JSON, touching cells only when the joined column needs it."""
    values = ["" if v is None else str(v) for v in s.astype(object).where(s.notna(), None).tolist()]
    if XML_ILLEGAL.search("\n".join(values)):
        values = [clean_text(v) for v in values]
    return values


def embedded_selection(s: pd.DataFrame, quoted: set[tuple[str, int]], limit: int = MAX_EMBEDDED) -> pd.DataFrame:
    """The sentences the page's search holds: all of them up to ``limit``; past it the coded ones
    (strength/gap/cause/measure), and past that the most confident of each unit × role in turn, so
    every unit keeps its share. Quoted sentences are always in (their links open them in context).
    Document order is kept."""
    if len(s) <= limit:
        return s
    coded = s[s["label"].isin(ROLES)]
    if len(coded) > limit:
        conf = coded["confidence"] if "confidence" in coded.columns else pd.Series(0.0, index=coded.index)
        order = coded.assign(_c=conf).sort_values("_c", ascending=False, kind="stable")
        rank = order.groupby(["unit", "label"], sort=False).cumcount()
        keep = rank.sort_values(kind="stable").index[:limit]
        keys = pd.MultiIndex.from_arrays([coded["doc_id"].astype(str), coded["idx"].astype("int64")])
        coded = coded[coded.index.isin(keep) | keys.isin(list(quoted))]
    return coded


def sentence_payload(frames: dict[str, pd.DataFrame], s: pd.DataFrame | None = None,
                     quoted: set[tuple[str, int]] | None = None, limit: int = MAX_EMBEDDED) -> dict[str, Any]:
    """The searchable sentences, compact: column lists, not one object per sentence; sections and
    themes as indexes into lists (a section heading repeats over many sentences)."""
    s = body_sentences(frames, LIGHT_COLUMNS) if s is None else s
    total = len(s)
    # choose on the small columns, then fetch text, section and theme for the chosen rows only
    s = fetch_columns(frames, embedded_selection(s, quoted or set(), limit), ("text", "section", "theme"))
    names = source_names(frames)
    missing = pd.Series([None] * len(s), index=s.index, dtype=object)
    col = {c: (s[c] if c in s.columns else missing) for c in ("theme", "page", "section", "idx")}
    doc_codes, docs = pd.factorize(s["doc_id"].astype(str), sort=True)
    unit_codes, units = pd.factorize(s["unit"], sort=True)
    sec_codes, sections = pd.factorize(pd.Series(_texts(col["section"]), index=s.index))
    theme_codes, themes = pd.factorize(pd.Series(_texts(col["theme"]), index=s.index), sort=True)
    rows = [list(r) for r in zip(doc_codes.tolist(), _ints(col["idx"]), unit_codes.tolist(), _texts(s["label"]),
                                 theme_codes.tolist(), _ints(col["page"]), _texts(s["text"]), sec_codes.tolist(),
                                 strict=True)]
    return {"units": list(units), "docs": [[d, names.get(d, d)] for d in docs],
            "sections": list(sections), "themes": list(themes),
            "fields": ["doc", "idx", "unit", "label", "theme", "page", "text", "section"], "rows": rows,
            "roles": ROLE_NAMES, "total": total}


def heat_tables(frames: dict[str, pd.DataFrame]) -> dict[str, Any] | None:
    """unit × theme counts per role (and over all roles), with an intensity step 0–HEAT_LEVELS per cell
    (the page colours cells by class: 1,000 units × 13 themes × 5 tables stay small)."""
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
        values = p.to_numpy(dtype="int64")
        top = max(int(values.max()) if values.size else 0, 1)
        levels = -(-values * HEAT_LEVELS // top)  # ceiling: any count shows at least step 1
        tables[role] = [(u, list(zip(v.tolist(), lv.tolist(), strict=True)))
                        for u, v, lv in zip(units, values, levels, strict=True)]
    return {"themes": themes, "tables": tables, "levels": HEAT_LEVELS}


def heat_css(levels: int = HEAT_LEVELS) -> Markup:
    """One CSS rule per intensity step (the digest's red at alpha step/levels; white text when dark)."""
    rules = [f".heat td.h{i}{{background:rgba(139,26,26,{i / levels:.2f}){';color:#fff' if i / levels > 0.55 else ''}}}"
             for i in range(1, levels + 1)]
    return Markup("\n".join(rules))


def generic_table(df: pd.DataFrame | None, limit: int = MAX_TABLE_ROWS) -> dict[str, Any] | None:
    """Any frame as header + rows of text (for tables whose columns are still settling)."""
    if df is None:
        return None
    head = df.head(limit)
    rows = [[clean_text(v) for v in row] for row in head.astype(object).itertuples(index=False)]
    return {"columns": [str(c) for c in df.columns], "rows": rows, "n": int(len(df))}


def render_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any], max_embedded: int | None = None) -> str:
    """The page as a string; ``max_embedded`` (default MAX_EMBEDDED) caps the sentences its search holds."""
    return _env().get_template("digest.html.j2").render(page_context(frames, meta, max_embedded))


def write_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path,
               max_embedded: int | None = None) -> None:
    """The page streamed to ``path`` (jinja2 writes it in pieces: a season's page never sits in
    memory whole, nor do the thousands of fragments it is joined from)."""
    context = page_context(frames, meta, max_embedded)
    _env().get_template("digest.html.j2").stream(context).dump(str(path), encoding="utf-8")


def page_context(frames: dict[str, pd.DataFrame], meta: dict[str, Any],
                 max_embedded: int | None = None) -> dict[str, Any]:
    """Everything the template shows, built with group-bys and capped for a season of any size."""
    names = source_names(frames)
    body = body_sentences(frames, LIGHT_COLUMNS)  # once, small: profiles, search data and counts share it
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
    n_units = int(body["unit"].nunique()) if len(body) else 0
    per_role = quotes_per_role(n_units)
    units = unit_profiles(frames, per_role=per_role, sentences=body)
    quoted = {(str(q["doc_id"]), int(q["idx"])) for u in units for r in u["roles"].values()
              for q in r["quotes"] if q.get("idx") is not None}
    payload = sentence_payload(frames, body, quoted, MAX_EMBEDDED if max_embedded is None else max_embedded)
    del body  # the page's own structures hold what is needed from here on
    role_totals = {r: int(pivot[r].sum()) if r in pivot.columns else 0 for r in (*ROLES, "other")}
    problems = problem_clusters(frames, names, max_clusters=MAX_CLUSTERS, max_members=MAX_MEMBERS)
    p = frame(frames, "problems", ("cluster_id",))
    matrix = theme_matrix(frames)
    chart_pivot = pivot
    if len(pivot) > MAX_CHART_UNITS:  # a chart of 1,000 rows is unreadable and slow to draw
        chart_pivot = pivot.loc[pivot.sum(axis=1).sort_values(ascending=False, kind="stable")
                                .index[:MAX_CHART_UNITS]].sort_index()
    return dict(
        meta=meta, documents=records(docs) if docs is not None else [],
        articles=records(arts) if arts is not None else [],
        units=units, names=names, per_role=per_role,
        pivot=[(u, row) for u, row in zip(pivot.index, pivot.to_dict("records"), strict=True)],
        role_totals=role_totals, roles=ROLES, role_names=ROLE_NAMES, themes=[t for t in payload["themes"] if t],
        chart_roles=Markup(charts.role_share_chart(chart_pivot)), chart_units=len(chart_pivot),
        n_pivot_units=len(pivot),
        chart_themes=Markup(charts.theme_role_chart(matrix)),
        heat=heat_tables(frames), heat_css=heat_css(), problems=problems,
        n_clusters=0 if p is None else int(p["cluster_id"].nunique()), max_members=MAX_MEMBERS,
        max_cluster_units=MAX_CLUSTER_UNITS,
        copies=copy_rows, n_copies=0 if copies is None else len(copies),
        figures=fig_rows, n_figures=0 if figures is None else len(figures),
        compare=generic_table(frame(frames, "compare")), max_rows=MAX_TABLE_ROWS,
        n_embedded=len(payload["rows"]), n_searchable=payload["total"],
        sentences_json=script_json(payload),
    )
