"""What every deliverable shares: role names, safe frame access, per-unit profiles, cell cleaning."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..analyze.matrix import CONTENT_KINDS

ROLE_NAMES = {"strength": "成绩与做法", "gap": "问题与差距", "cause": "原因", "measure": "措施与打算",
              "other": "其他"}
ROLES = ("strength", "gap", "cause", "measure")
UNKNOWN_UNIT = "(未识别)"

# XML 1.0 forbids most C0 control characters; a report pasted from a PDF can carry them
XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean_text(value: Any) -> str:
    """A value as text that XML (DOCX, XLSX, QDPX) accepts; missing values become ''."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return XML_ILLEGAL.sub("", str(value))


def frame(frames: dict[str, pd.DataFrame], name: str, columns: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """A frame when present, non-empty and carrying ``columns`` (others may still be building it)."""
    df = frames.get(name)
    if df is None or not isinstance(df, pd.DataFrame) or df.empty:
        return None
    if any(c not in df.columns for c in columns):
        return None
    return df


def is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with missing values as None (templates cannot test pandas' NA).

    Plain dict work: pandas' where/astype per small frame costs ~10 ms, too much for 1,000 groups.
    """
    return [{k: (None if is_missing(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def problem_clusters(frames: dict[str, pd.DataFrame], names: dict[str, str], max_clusters: int | None = None,
                     max_members: int | None = None) -> list[dict[str, Any]]:
    """Recurring problems: one dict per cluster with its members, most widespread first.

    ``n`` and ``units`` always describe the whole cluster. With ``max_clusters`` only the most
    widespread are returned; with ``max_members`` a cluster lists at most that many members, one per
    unit before a unit's second (a 1,000-report season has ~250,000 members: a page cannot list
    them, tables.xlsx does). Counting and ordering are group-bys, not Python per member.
    """
    p = frame(frames, "problems", ("cluster_id", "text"))
    if p is None:
        return []
    unit = p["unit"] if "unit" in p.columns else pd.Series("", index=p.index)
    p = p.assign(unit=map_unique(unit, unit_name))
    g = p.groupby("cluster_id", sort=False)
    stats = pd.DataFrame({"n": g.size(), "n_units": g["unit"].nunique()})
    stats["id"] = map_unique(stats.index.to_series(), clean_text).to_numpy()
    stats = stats.sort_values(["n_units", "n", "id"], ascending=[False, False, True], kind="stable")
    if max_clusters is not None:
        stats = stats.head(max_clusters)
    chosen = p[p["cluster_id"].isin(stats.index)]
    units = chosen.groupby("cluster_id", sort=False)["unit"].unique()
    name_col = "cluster_name" if "cluster_name" in chosen.columns else "cluster_id"
    cluster_names = chosen.groupby("cluster_id", sort=False)[name_col].first()
    if max_members is not None:
        # breadth first: each unit's first member, then second members, … in file order
        depth = chosen.groupby(["cluster_id", "unit"], sort=False).cumcount()
        chosen = chosen.assign(_depth=depth).sort_values("_depth", kind="stable")
        chosen = chosen.groupby("cluster_id", sort=False).head(max_members).sort_index().drop(columns="_depth")
    members: dict[Any, list[dict[str, Any]]] = {}
    for r in records(chosen):
        r["source"] = names.get(str(r.get("doc_id")), clean_text(r.get("doc_id")))
        members.setdefault(r["cluster_id"], []).append(r)
    return [{"id": row.id, "name": clean_text(cluster_names[cid]) or row.id, "members": members.get(cid, []),
             "units": sorted(units[cid]), "n": int(row.n)}
            for cid, row in zip(stats.index, stats.itertuples(), strict=True)]


def unit_name(value: Any) -> str:
    text = clean_text(value).strip()
    return text or UNKNOWN_UNIT


def map_unique(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """``values.map(func)`` calling func once per distinct value: a season has ~1,000 units over
    ~450,000 sentences, so per-row Python work would dominate."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    mapped = np.array([func(v) for v in uniques], dtype=object)
    return pd.Series(mapped[codes] if len(codes) else [], index=values.index, dtype=object)


# what the HTML, DOCX and the profiles read of a sentence; the rest (token lists, offsets) stays behind
BODY_COLUMNS = ("doc_id", "article_id", "unit", "section", "idx", "text", "label", "confidence", "theme",
                "page", "kind")


# the few small columns the counting, ranking and selecting need: a 1,000-report season's body text
# and headings are ~150 MB, so they are fetched (see ``fetch_columns``) only for the rows shown
LIGHT_COLUMNS = ("doc_id", "unit", "idx", "label", "confidence", "page")


def body_sentences(frames: dict[str, pd.DataFrame], columns: tuple[str, ...] = BODY_COLUMNS) -> pd.DataFrame:
    """Report text only (no furniture, TOC lines, table rows), with the unit filled in.

    Only ``columns`` are taken (never the token lists). The index is the row's position in
    ``frames["sentences"]``, so :func:`fetch_columns` can add other columns for a few rows later.
    """
    s = frame(frames, "sentences", ("unit", "label", "text"))
    if s is None:
        return pd.DataFrame(columns=["doc_id", "article_id", "unit", "idx", "text", "label"])
    keep = [c for c in dict.fromkeys((*columns, "unit", "label")) if c in s.columns]
    if "kind" in s.columns:
        positions = np.flatnonzero(s["kind"].isin(CONTENT_KINDS).to_numpy())
        out = s[keep].iloc[positions]
    else:
        positions = np.arange(len(s))
        out = s[keep]
    out = out.set_axis(pd.Index(positions), axis=0)
    return out.assign(unit=map_unique(out["unit"], unit_name))


def fetch_columns(frames: dict[str, pd.DataFrame], rows: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``rows`` (from :func:`body_sentences`) with those of ``columns`` it lacks taken from the sentences
    table, for these rows only."""
    s = frames.get("sentences")
    missing = [c for c in columns if c not in rows.columns and s is not None and c in s.columns]
    if not missing:
        return rows
    extra = s[missing].iloc[rows.index.to_numpy()].set_axis(rows.index, axis=0)
    return pd.concat([rows, extra], axis=1)


def source_names(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """doc_id → the file's short name (the path as given can be long)."""
    docs = frame(frames, "documents", ("doc_id", "source"))
    if docs is None:
        return {}
    return {str(d): str(src).replace("\\", "/").rsplit("/", 1)[-1] for d, src in
            zip(docs["doc_id"], docs["source"], strict=True)}


QUOTE_BUDGET = 8_000  # quotes over all units and roles in the HTML and DOCX: 8 per role up to 250 units
MAX_QUOTES, MIN_QUOTES = 8, 2


def quotes_per_role(n_units: int) -> int:
    """Quotes per unit and role: MAX_QUOTES for a small season, fewer as units grow (QUOTE_BUDGET), so
    a 1,000-unit season's digest stays readable and small."""
    return max(MIN_QUOTES, min(MAX_QUOTES, QUOTE_BUDGET // max(4 * n_units, 1)))


QUOTE_COLUMNS = ("doc_id", "article_id", "unit", "section", "idx", "text", "label", "confidence", "theme",
                 "page")


def unit_profiles(frames: dict[str, pd.DataFrame], per_role: int = 8,
                  sentences: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Per unit: sentence counts and the most confident quotes of each role, plus its keywords.

    One sort and one group-by over the season (not a sort per unit and role): quotes are a role's
    sentences by confidence, highest first, ties in document order. ``sentences`` is
    :func:`body_sentences` when the caller has it already.
    """
    s = body_sentences(frames) if sentences is None else sentences
    kw = frame(frames, "keywords", ("unit", "word"))
    words: dict[str, list[str]] = {}
    if kw is not None:
        order = kw.sort_values("score", ascending=False, kind="stable") if "score" in kw.columns else kw
        for unit, g in order.groupby(map_unique(order["unit"], unit_name), sort=False):
            words[unit] = [clean_text(w) for w in g["word"].head(15)]
    totals = s.groupby("unit", sort=True).size()
    counts = s.groupby(["unit", "label"]).size().to_dict()
    coded = s[s["label"].isin(ROLES)]
    sort_cols = [c for c in ("confidence", "idx") if c in coded.columns]
    if sort_cols:
        coded = coded.sort_values(sort_cols, ascending=[c != "confidence" for c in sort_cols], kind="stable")
    top = coded.groupby(["unit", "label"], sort=False).head(per_role)
    quotes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    top = fetch_columns(frames, top, QUOTE_COLUMNS)  # text, section, theme for the quotes only
    for r in records(top[[c for c in QUOTE_COLUMNS if c in top.columns]]):
        quotes.setdefault((r["unit"], r["label"]), []).append(r)
    return [{"unit": unit, "n": int(n),
             "roles": {role: {"n": int(counts.get((unit, role), 0)), "quotes": quotes.get((unit, role), [])}
                       for role in ROLES},
             "keywords": words.get(unit, [])} for unit, n in totals.items()]


def role_pivot(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """unit × role sentence counts (from the matrix when present, else from the sentences)."""
    m = frame(frames, "matrix", ("unit", "label", "n"))
    if m is None:
        s = body_sentences(frames)
        m = s.groupby(["unit", "label"]).size().rename("n").reset_index()
    m = m.assign(unit=map_unique(m["unit"], unit_name))
    return (m.groupby(["unit", "label"])["n"].sum().unstack(fill_value=0)
            .reindex(columns=[*ROLES, "other"], fill_value=0).astype(int))


def theme_matrix(frames: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """unit × theme × role counts (columns unit, theme, label, n), or None without themes."""
    m = frame(frames, "matrix", ("unit", "theme", "label", "n"))
    if m is None:
        return None
    return m.assign(unit=map_unique(m["unit"], unit_name),
                    theme=map_unique(m["theme"], lambda t: clean_text(t).strip() or "其他"))
