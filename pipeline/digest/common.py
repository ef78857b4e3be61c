"""What every deliverable shares: role names, safe frame access, per-unit profiles, cell cleaning."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ..analyze.matrix import content_sentences

ROLE_NAMES = {"strength": "成绩与做法", "gap": "问题与差距", "cause": "原因", "measure": "措施与打算",
              "other": "其他"}
ROLES = ("strength", "gap", "cause", "measure")
UNKNOWN_UNIT = "(未识别)"

# XML 1.0 forbids most C0 control characters; a report pasted from a PDF can carry them
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean_text(value: Any) -> str:
    """A value as text that XML (DOCX, XLSX, QDPX) accepts; missing values become ''."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return _XML_ILLEGAL.sub("", str(value))


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


def problem_clusters(frames: dict[str, pd.DataFrame], names: dict[str, str]) -> list[dict[str, Any]]:
    """Recurring problems: one dict per cluster with its members, most widespread first."""
    p = frame(frames, "problems", ("cluster_id", "text"))
    if p is None:
        return []
    clusters: dict[Any, dict[str, Any]] = {}
    for r in records(p):
        r["unit"] = unit_name(r.get("unit"))
        r["source"] = names.get(str(r.get("doc_id")), clean_text(r.get("doc_id")))
        c = clusters.setdefault(r["cluster_id"], {"id": clean_text(r["cluster_id"]),
                                                  "name": clean_text(r.get("cluster_name")) or
                                                  clean_text(r["cluster_id"]), "members": []})
        c["members"].append(r)
    out = list(clusters.values())
    for c in out:
        c["units"] = sorted({m["unit"] for m in c["members"]})
        c["n"] = len(c["members"])
    out.sort(key=lambda c: (-len(c["units"]), -c["n"], c["id"]))
    return out


def unit_name(value: Any) -> str:
    text = clean_text(value).strip()
    return text or UNKNOWN_UNIT


def body_sentences(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Report text only (no furniture, TOC lines, table rows), with the unit filled in."""
    s = frame(frames, "sentences", ("unit", "label", "text"))
    if s is None:
        return pd.DataFrame(columns=["doc_id", "article_id", "unit", "idx", "text", "label"])
    if "kind" in s.columns:
        s = content_sentences(s)
    return s.assign(unit=s["unit"].map(unit_name))


def source_names(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """doc_id → the file's short name (the path as given can be long)."""
    docs = frame(frames, "documents", ("doc_id", "source"))
    if docs is None:
        return {}
    return {str(d): str(src).replace("\\", "/").rsplit("/", 1)[-1] for d, src in
            zip(docs["doc_id"], docs["source"], strict=True)}


def unit_profiles(frames: dict[str, pd.DataFrame], per_role: int = 8) -> list[dict[str, Any]]:
    """Per unit: sentence counts and the most confident quotes of each role, plus its keywords."""
    s = body_sentences(frames)
    kw = frame(frames, "keywords", ("unit", "word"))
    words: dict[str, list[str]] = {}
    if kw is not None:
        order = kw.sort_values("score", ascending=False) if "score" in kw.columns else kw
        for unit, g in order.groupby(order["unit"].map(unit_name), sort=False):
            words[unit] = [clean_text(w) for w in g["word"].head(15)]
    sort_cols = [c for c in ("confidence", "idx") if c in s.columns]
    out = []
    for unit, g in s.groupby("unit", sort=True):
        roles = {}
        for role in ROLES:
            r = g[g["label"] == role]
            if sort_cols:
                r = r.sort_values(sort_cols, ascending=[c != "confidence" for c in sort_cols])
            roles[role] = {"n": int(len(r)), "quotes": records(r.head(per_role))}
        out.append({"unit": unit, "n": int(len(g)), "roles": roles, "keywords": words.get(unit, [])})
    return out


def role_pivot(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """unit × role sentence counts (from the matrix when present, else from the sentences)."""
    m = frame(frames, "matrix", ("unit", "label", "n"))
    if m is None:
        s = body_sentences(frames)
        m = s.groupby(["unit", "label"]).size().rename("n").reset_index()
    m = m.assign(unit=m["unit"].map(unit_name))
    return (m.groupby(["unit", "label"])["n"].sum().unstack(fill_value=0)
            .reindex(columns=[*ROLES, "other"], fill_value=0).astype(int))


def theme_matrix(frames: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """unit × theme × role counts (columns unit, theme, label, n), or None without themes."""
    m = frame(frames, "matrix", ("unit", "theme", "label", "n"))
    if m is None:
        return None
    return m.assign(unit=m["unit"].map(unit_name),
                    theme=m["theme"].map(lambda t: clean_text(t).strip() or "其他"))
