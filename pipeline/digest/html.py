"""digest.html: one self-contained page (jinja2 with autoescape; CSS, JS and SVG charts inline).

Report text reaches the page two ways, both escaped: through jinja2's autoescape in the markup, and
as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as \\u escapes
so no report text can close the script element.

Season scale (issue 8: 1,000 reports, ~450,000 sentences): the page stays under ~20 MB. Its search
holds every report sentence up to MAX_EMBEDDED, past that the coded ones (strength/gap/cause/measure)
and past that the most confident of each unit × role in turn (quoted sentences always), and says so;
tables.xlsx and sentences.parquet hold all. Quotes per role shrink as units grow, recurring problems
and chart rows are capped, heat-map cells are coloured by class. Quotes and search rows are chosen on
the files' small parts (``common.SeasonBody``); text is read from the files' sentences only for the
rows shown, once for both. The long repeated sections (units, problem members, heat-map cells) are
made as escaped markup here, not by thousands of template steps; the page is streamed by jinja2.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import BytecodeCache, Environment, PackageLoader, select_autoescape
from jinja2.bccache import Bucket
from markupsafe import Markup

from . import charts
from .common import (
    QUOTE_COLUMNS,
    ROLE_NAMES,
    ROLES,
    XML_ILLEGAL,
    SeasonBody,
    clean_text,
    frame,
    group_rank,
    problem_clusters,
    quotes_per_role,
    records,
    role_pivot,
    season_body,
    source_names,
    theme_matrix,
    unit_name,
    unit_profiles,
    unit_theme_counts,
)

MAX_TABLE_ROWS = 500  # long tables (figures, copies) are cut here in the page; tables.xlsx has all
# Page size at season scale (issue 8: 1,000 reports, ~450,000 sentences) stays under ~20 MB:
MAX_EMBEDDED = 40_000  # searchable sentences in the page's JSON (~200 bytes each)
MAX_CLUSTERS, MAX_MEMBERS = 150, 30  # recurring problems shown, members listed per problem
MAX_CLUSTER_UNITS = 30  # unit names spelled out in a problem's summary line
MAX_CHART_UNITS = 40  # rows of the unit × role chart (largest units); the table below has all
HEAT_LEVELS = 10  # heat-map cells carry a class per intensity step, not an inline style each


class _MemoBytecode(BytecodeCache):
    """The compiled template kept in the run's memo: compiling digest.html.j2 costs ~40 ms a
    process, and a rerun is one process. Keyed by jinja2 on the template's source checksum; its
    marshal header check rejects another Python's code (a miss, not an error)."""

    def __init__(self, memo: MutableMapping[str, Any]) -> None:
        self.memo = memo

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            data = self.memo[f"digest.jinja:{bucket.key}:{bucket.checksum}"]
        except Exception:  # noqa: BLE001 - missing or unreadable: compile
            return
        if isinstance(data, bytes):
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.memo[f"digest.jinja:{bucket.key}:{bucket.checksum}"] = bucket.bytecode_to_string()


def _env(memo: MutableMapping[str, Any] | None = None) -> Environment:
    return Environment(loader=PackageLoader("pipeline.digest", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                       lstrip_blocks=True, bytecode_cache=None if memo is None else _MemoBytecode(memo))


def script_json(obj: Any) -> Markup:
    """JSON safe to place inside a <script> element whatever the strings hold."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # U+2028/2029 are legal in JSON but were line terminators in older JS engines
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def _ints(values: list[Any]) -> list[int | None]:
    """Fetched cells as Python ints with None for missing."""
    return [None if v is None else int(v) for v in values]


def _texts(values: list[Any]) -> list[str]:
    """Fetched cells as text cleaned for XML/JSON, touching cells only when the joined column needs it."""
    out = ["" if v is None else str(v) for v in values]
    if XML_ILLEGAL.search("\n".join(out)):
        out = [clean_text(v) for v in out]
    return out


def _units(values: list[Any]) -> list[str]:
    """Unit cells as the digest names units (blank → 未识别), one call per distinct value."""
    names: dict[Any, str] = {}
    return [names[v] if v in names else names.setdefault(v, unit_name(v)) for v in values]


def embedded_rows(body: SeasonBody, quoted: tuple[np.ndarray, np.ndarray],
                  limit: int = MAX_EMBEDDED) -> tuple[np.ndarray, np.ndarray]:
    """(file, row) of the sentences the page's search holds, in season order: all report sentences up
    to ``limit``; past it the coded ones (strength/gap/cause/measure), and past that the most confident
    of each unit × role in turn (rank within unit × role, then confidence, then season order), so every
    unit keeps its share. Quoted sentences (``quoted``: file, row) are always in (their links open them
    in context). Works on the parts' small arrays only."""
    if body.total <= limit:
        return body.content_rows()
    files, rows = body.file, body.pos
    if len(files) > limit:
        quoted_keys = quoted[0].astype(np.int64) * (1 << 32) + quoted[1]
        keep = np.zeros(len(files), bool)
        cand = body.candidates
        chosen, ranks = _most_confident(body, cand, limit) if cand is not None else (None, None)
        if chosen is not None and ranks is not None and len(chosen) == limit and (
                len(ranks) == 0 or ranks.max() < body.shown_rank):
            # ranks below shown_rank are the same among the parts' candidates as among all coded rows
            # (a row's predecessors in its unit × role rank lower, so are candidates too), and enough
            # rows rank below it: the same choice on ~1/8 of the rows; quotes are candidates as well
            keep[chosen] = True
            keep[cand[np.isin(files[cand].astype(np.int64) * (1 << 32) + rows[cand], quoted_keys)]] = True
        else:
            chosen, _ = _most_confident(body, np.arange(len(files)), limit)
            keep[chosen] = True
            keep |= np.isin(files.astype(np.int64) * (1 << 32) + rows, quoted_keys)
        files, rows = files[keep], rows[keep]
    return files, rows


def _most_confident(body: SeasonBody, coded: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` of these coded rows (sorted indexes) by rank within unit × role (confidence
    high first, season order on ties), then confidence, then season order; with their ranks."""
    order = coded[np.lexsort((coded, -body.conf[coded]))]
    rank = group_rank((body.unit * len(ROLES) + body.label)[order])
    first = np.argsort(rank, kind="stable")[:limit]
    return order[first], rank[first]


def prepare(body: SeasonBody, max_embedded: int | None = None) -> tuple[int, tuple[np.ndarray, np.ndarray]]:
    """The page's quotes per role and search rows; reads the search rows' columns (a superset of the
    quotes': those always ride along) in one pass over the files, for the quotes and the search alike."""
    limit = MAX_EMBEDDED if max_embedded is None else max_embedded
    per_role = quotes_per_role(len(body.units))
    if body.search is not None and body.search[0] == limit:
        return per_role, body.search[1]
    search = embedded_rows(body, body.quotes(per_role), limit)
    body.prefetch(*search, QUOTE_COLUMNS)
    body.search = (limit, search)
    return per_role, search


def sentence_payload(frames: dict[str, pd.DataFrame], body: SeasonBody | None = None,
                     limit: int | None = None) -> dict[str, Any]:
    """The searchable sentences, compact: column lists, not one object per sentence; sections and
    themes as indexes into lists (a section heading repeats over many sentences). Rows are chosen on
    the parts' small arrays (:func:`embedded_rows`); their columns are read for them only."""
    body = season_body(frames, body=body)
    _, (files, rows) = prepare(body, limit)
    got = body.fetch(files, rows, ("doc_id", "idx", "unit", "label", "theme", "page", "text", "section"))
    names = source_names(frames)
    doc_codes, docs = pd.factorize(pd.Series([str(d) for d in got["doc_id"]], dtype=object), sort=True)
    unit_codes, units = pd.factorize(pd.Series(_units(got["unit"]), dtype=object), sort=True)
    sec_codes, sections = pd.factorize(pd.Series(_texts(got["section"]), dtype=object))
    theme_codes, themes = pd.factorize(pd.Series(_texts(got["theme"]), dtype=object), sort=True)
    # rows as tuples (JSON arrays all the same): one object per row, not a tuple and a list
    rows_out = list(zip(doc_codes.tolist(), _ints(got["idx"]), unit_codes.tolist(), _texts(got["label"]),
                        theme_codes.tolist(), _ints(got["page"]), _texts(got["text"]), sec_codes.tolist(),
                        strict=True))
    return {"units": list(units), "docs": [[d, names.get(d, d)] for d in docs],
            "sections": list(sections), "themes": list(themes),
            "fields": ["doc", "idx", "unit", "label", "theme", "page", "text", "section"], "rows": rows_out,
            "roles": ROLE_NAMES, "total": body.total}


def _esc(value: Any) -> str:
    """markupsafe.escape as plain text (the same five characters, the same entities): ~100,000 calls
    for a season's page, without a Markup object each."""
    text = value if type(value) is str else str(value)
    if "&" in text:
        text = text.replace("&", "&amp;")
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;").replace('"', "&#34;")


def unit_sections(units: list[dict[str, Any]], names: dict[str, str]) -> Markup:
    """The "各单位" sections (a profile per unit, its quotes linked to their sentences), escaped here as
    the template would: ~1,000 units × 4 roles × quotes are too many template steps (issue 8)."""
    out: list[str] = []
    for i, u in enumerate(units, 1):
        unit = _esc(u["unit"])
        out.append(f'<section class="unit" id="u{i}" data-unit="{unit}">\n'
                   f'<h3>{unit} <span class="muted">（{_esc(u["n"])} 句）</span></h3>\n')
        if u["keywords"]:
            out.append('<p class="kw">关键词：' + "".join([f"<span>{_esc(w)}</span>" for w in u["keywords"]])
                       + "</p>")
        for r in ROLES:
            role = u["roles"][r]
            if not role["n"]:
                continue
            out.append(f'<div class="role" data-label="{r}">\n<h4>{_esc(ROLE_NAMES[r])}（{_esc(role["n"])}）</h4>\n')
            for q in role["quotes"]:
                doc = _esc(q["doc_id"])
                where = "" if q["page"] is None else f"，第{_esc(q['page'])}页"
                if q["section"]:
                    where += f"，{_esc(q['section'])}"
                out.append(f'<blockquote class="role-{r}" data-theme="{_esc(q["theme"] or "")}">{_esc(q["text"])} '
                           f'<span class="src">— <a href="#s-{doc}-{_esc(q["idx"])}" data-doc="{doc}" '
                           f'data-idx="{_esc(q["idx"])}">{_esc(names.get(q["doc_id"], q["doc_id"]))}</a>'
                           f"{where}</span></blockquote>\n")
            out.append("</div>\n")
        out.append("</section>\n")
    return Markup("".join(out))


def problem_rows(clusters: list[dict[str, Any]]) -> list[Markup]:
    """Each recurring problem's member rows (the template's table body), escaped as the template would."""
    out = []
    for c in clusters:
        rows = []
        for m in c["members"]:
            unit = _esc(m.get("unit"))
            sentence = m.get("sentence")
            text = _esc(m.get("text"))
            if sentence and sentence != m.get("text"):
                text += f'<br><span class="src">{_esc(sentence)}</span>'
            page = "" if "page" in m and m["page"] is None else f"，第{_esc(m.get('page', ''))}页"
            rows.append(f'<tr data-unit="{unit}"><td>{unit}</td>'
                        f'<td>{_esc(ROLE_NAMES.get(m.get("label"), m.get("label")))}</td><td>{text}</td>'
                        f'<td class="src">{_esc(m.get("source"))}{page}</td></tr>\n')
        out.append(Markup("".join(rows)))
    return out


def heat_tables(frames: dict[str, pd.DataFrame]) -> dict[str, Any] | None:
    """unit × theme counts per role (and over all roles), with an intensity step 0–HEAT_LEVELS per cell
    (the page colours cells by class: 1,000 units × 13 themes × 5 tables stay small)."""
    m = theme_matrix(frames)
    if m is None:
        return None
    themes = sorted(m["theme"].unique().tolist(), key=lambda t: (t == "其他", t))
    units = sorted(m["unit"].unique().tolist())
    tables = {}
    counts = m["n"]
    integral = pd.api.types.is_integer_dtype(counts.dtype) and not counts.hasnans
    if integral:  # one pass of numpy sums for the five tables (group-by, unstack, reindex each: ~5× slower)
        at = (pd.Index(units).get_indexer(m["unit"]), pd.Index(themes).get_indexer(m["theme"]))
        n = counts.to_numpy(dtype="int64")
        labels = m["label"].to_numpy(dtype=object)
    cell: dict[tuple[int, int], str] = {}  # a cell's markup per (count, step): few distinct
    for role in ("all", *ROLES):
        if integral:
            sel = labels != "other" if role == "all" else labels == role
            values = np.zeros((len(units), len(themes)), dtype=np.int64)
            np.add.at(values, (at[0][sel], at[1][sel]), n[sel])
        else:
            sub = m[m["label"] != "other"] if role == "all" else m[m["label"] == role]
            values = unit_theme_counts(sub).reindex(index=units, columns=themes, fill_value=0).to_numpy(dtype="int64")
        top = max(int(values.max()) if values.size else 0, 1)
        levels = -(-values * HEAT_LEVELS // top)  # ceiling: any count shows at least step 1
        # a row's cells as markup made here (numbers only, nothing to escape): 1,000 units × 13 themes
        # × 5 tables are ~65,000 cells, too many for a template loop
        tables[role] = [(u, Markup("".join([cell.get(k) or cell.setdefault(k, f'<td class="c h{k[1]}">{k[0] if k[0] else ""}</td>')
                                            for k in zip(v, lv_row, strict=True)])))
                        for u, v, lv_row in zip(units, values.tolist(), levels.tolist(), strict=True)]
    # each table's rows as one piece of markup (5,000 template steps fewer for 1,000 units)
    rows = {role: Markup("".join([f'<tr data-unit="{(e := _esc(u))}"><td>{e}</td>{cells}</tr>\n'
                                  for u, cells in t]))
            for role, t in tables.items()}
    return {"themes": themes, "tables": tables, "levels": HEAT_LEVELS, "rows": rows}


def _field(d: Mapping[str, Any], key: str) -> str:
    """``{{ d.key }}`` as the template writes it: escaped text, '' when absent, 'None' for None."""
    return _esc(d[key]) if key in d else ""


def pivot_rows(pivot: list[tuple[str, dict[str, Any]]]) -> Markup:
    """The unit × role table's rows (a row per unit, linked to its section), as the template would."""
    out = []
    for i, (unit, row) in enumerate(pivot, 1):
        u = _esc(unit)
        cells = "".join([f'<td class="n">{_esc(row[r])}</td>' for r in ROLES])
        out.append(f'<tr data-unit="{u}"><td><a href="#u{i}">{u}</a></td>{cells}'
                   f'<td class="n">{_esc(row["other"])}</td></tr>\n')
    return Markup("".join(out))


def document_rows(documents: list[dict[str, Any]]) -> Markup:
    """The files table's rows, as the template would."""
    return Markup("".join([f'<tr class="{_field(d, "status")}"><td>{_field(d, "source")}</td>'
                           f'<td>{_field(d, "format")}</td><td>{_field(d, "status")}</td>'
                           f'<td>{_field(d, "reason")}</td><td class="n">{_field(d, "n_chars")}</td></tr>\n'
                           for d in documents]))


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


def render_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any], max_embedded: int | None = None,
                parts: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The page as a string; ``max_embedded`` (default MAX_EMBEDDED) caps the sentences its search
    holds. ``parts`` as for :func:`page_context` (without them, made from frames["sentences"])."""
    return _env().get_template("digest.html.j2").render(page_context(frames, meta, max_embedded, parts))


def write_html(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path,
               max_embedded: int | None = None, parts: Sequence[Mapping[str, Any]] | None = None, *,
               body: SeasonBody | None = None, profiles: list[dict[str, Any]] | None = None,
               clusters: list[dict[str, Any]] | None = None, memo: MutableMapping[str, Any] | None = None) -> None:
    """The page streamed to ``path`` (jinja2 writes it in pieces: a season's page never sits in
    memory whole, nor do the thousands of fragments it is joined from)."""
    context = page_context(frames, meta, max_embedded, parts, body=body, profiles=profiles, clusters=clusters,
                           memo=memo)
    stream = _env(memo).get_template("digest.html.j2").stream(context)
    stream.enable_buffering(256)  # written in pieces of 256 fragments: one encode and write each
    stream.dump(str(path), encoding="utf-8")


def _chart(memo: MutableMapping[str, Any] | None, name: str, data: pd.DataFrame | None,
           draw: Callable[[Any], str]) -> str:
    """A chart's SVG, kept in ``memo`` under a hash of the table it draws (matplotlib takes ~0.1–1 s a
    chart; a rerun whose counts did not change reuses it)."""
    if memo is None or data is None:
        return draw(data)
    digest = hashlib.sha256(name.encode())
    digest.update(pickle.dumps((list(data.columns), list(data.index)), protocol=pickle.HIGHEST_PROTOCOL))
    digest.update(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    key = f"digest.chart.svg2:{name}:{digest.hexdigest()}"  # (svg2: drawn by hand, not matplotlib)
    try:
        return memo[key]
    except KeyError:
        svg = draw(data)
        memo[key] = svg
        return svg


def page_context(frames: dict[str, pd.DataFrame], meta: dict[str, Any], max_embedded: int | None = None,
                 parts: Sequence[Mapping[str, Any]] | None = None, *, body: SeasonBody | None = None,
                 profiles: list[dict[str, Any]] | None = None, clusters: list[dict[str, Any]] | None = None,
                 memo: MutableMapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the template shows, built with group-bys and capped for a season of any size.

    Report text comes from ``parts`` (per file: the body part and the file's sentences, see
    :class:`SeasonBody`) or, without them, from frames["sentences"]; ``body`` and ``profiles`` when the
    caller (write_digest, shared with the DOCX) has them already, likewise ``clusters`` (recurring
    problems, :func:`problem_clusters` with at least MAX_CLUSTERS × MAX_MEMBERS); ``memo`` keeps the
    charts.
    """
    names = source_names(frames)
    body = season_body(frames, parts, body)
    pivot = role_pivot(frames, body)
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
    per_role, _ = prepare(body, max_embedded)
    units = unit_profiles(frames, per_role=per_role, body=body) if profiles is None else profiles
    payload = sentence_payload(frames, body, max_embedded)
    role_totals = {r: int(pivot[r].sum()) if r in pivot.columns else 0 for r in (*ROLES, "other")}
    if clusters is None:
        clusters = problem_clusters(frames, names, max_clusters=MAX_CLUSTERS, max_members=MAX_MEMBERS)
    problems = clusters[:MAX_CLUSTERS]
    p = frame(frames, "problems", ("cluster_id",))
    matrix = theme_matrix(frames)
    chart_pivot = pivot
    if len(pivot) > MAX_CHART_UNITS:  # a chart of 1,000 rows is unreadable and slow to draw
        chart_pivot = pivot.loc[pivot.sum(axis=1).sort_values(ascending=False, kind="stable")
                                .index[:MAX_CHART_UNITS]].sort_index()
    documents = records(docs) if docs is not None else []
    pivot_list = [(u, row) for u, row in zip(pivot.index, pivot.to_dict("records"), strict=True)]
    return dict(
        meta=meta, documents=documents, document_rows=document_rows(documents),
        unit_options=Markup("".join([f'<option value="{(e := _esc(u["unit"]))}">{e}</option>' for u in units])),
        pivot_rows=pivot_rows(pivot_list),
        n_articles=0 if arts is None else len(arts),
        units=units, names=names, per_role=per_role, unit_sections=unit_sections(units, names),
        problem_rows=problem_rows(problems),
        pivot=pivot_list,
        role_totals=role_totals, roles=ROLES, role_names=ROLE_NAMES, themes=[t for t in payload["themes"] if t],
        chart_roles=Markup(_chart(memo, "roles", chart_pivot, charts.role_share_chart)),
        chart_units=len(chart_pivot), n_pivot_units=len(pivot),
        chart_themes=Markup(_chart(memo, "themes", matrix, charts.theme_role_chart)),
        heat=heat_tables(frames), heat_css=heat_css(), problems=problems,
        n_clusters=0 if p is None else int(p["cluster_id"].nunique()), max_members=MAX_MEMBERS,
        max_cluster_units=MAX_CLUSTER_UNITS,
        copies=copy_rows, n_copies=0 if copies is None else len(copies),
        figures=fig_rows, n_figures=0 if figures is None else len(figures),
        compare=generic_table(frame(frames, "compare")), max_rows=MAX_TABLE_ROWS,
        n_embedded=len(payload["rows"]), n_searchable=payload["total"],
        sentences_json=script_json(payload),
    )
