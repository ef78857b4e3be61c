"""What every deliverable shares: role names, safe frame access, per-unit profiles, cell cleaning."""

from __future__ import annotations

import pickle
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..analyze.matrix import CONTENT_KINDS
from ..season import SENTENCES, FrameParts, docs_from_frames

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
    if df.columns.has_duplicates:  # (to_dict keeps the last of a repeated name; so does this)
        return [{k: (None if is_missing(v) else v) for k, v in r.items()} for r in df.to_dict("records")]
    # column by column: pandas' to_dict iterates Arrow-backed strings one boxed value at a time
    columns = list(df.columns)
    lists = [_column_values(df.iloc[:, j]) for j in range(df.shape[1])]
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)] if lists else \
        [{} for _ in range(len(df))]


def _column_values(s: pd.Series) -> list[Any]:
    """A column as Python values (numpy scalars unboxed, as to_dict gives them), missing as None."""
    values = s.to_numpy(dtype=object, na_value=None).tolist()
    if pd.api.types.is_numeric_dtype(s.dtype) or (pd.api.types.is_string_dtype(s.dtype) and s.dtype != object):
        return values  # na_value=None covered every missing value of these
    return [None if v is not None and is_missing(v) else v for v in values]


def problem_clusters(frames: dict[str, pd.DataFrame], names: dict[str, str], max_clusters: int | None = None,
                     max_members: int | None = None) -> list[dict[str, Any]]:
    """Recurring problems: one dict per cluster with its members, most widespread first.

    ``n`` and ``units`` always describe the whole cluster. With ``max_clusters`` only the most
    widespread are returned; with ``max_members`` a cluster lists at most that many members, one per
    unit before a unit's second (a 1,000-report season has ~250,000 members: a page cannot list
    them, tables.xlsx does). Counting and ordering are numpy work on factorized codes; only the
    members listed become Python objects.
    """
    p = frame(frames, "problems", ("cluster_id", "text"))
    if p is None:
        return []
    name_col = "cluster_name" if "cluster_name" in p.columns else "cluster_id"
    if (p.index.is_monotonic_increasing and p.index.is_unique and not p["cluster_id"].hasnans
            and not p[name_col].hasnans and not p.columns.has_duplicates):
        return _problem_clusters_codes(p, names, name_col, max_clusters, max_members)
    return _problem_clusters_pandas(p, names, max_clusters, max_members)


def _problem_clusters_codes(p: pd.DataFrame, names: dict[str, str], name_col: str, max_clusters: int | None,
                            max_members: int | None) -> list[dict[str, Any]]:
    """:func:`problem_clusters` on integer codes (issue 8: the pandas group-bys, boolean selections
    and sorts over a season's ~260,000 problem rows cost ~0.10–0.16 s CPU a rerun; this ~0.05 s). The same
    result as :func:`_problem_clusters_pandas` for a table without missing cluster ids or names and
    with an ordered index (what the analysis makes)."""
    cluster, cluster_ids = pd.factorize(p["cluster_id"], sort=False)  # first-appearance order = groupby(sort=False)
    n_clusters = len(cluster_ids)
    raw_unit = p["unit"] if "unit" in p.columns else pd.Series("", index=p.index)
    unit_raw, unit_uniques = pd.factorize(raw_unit, use_na_sentinel=False)
    named: dict[str, int] = {}  # raw values giving the same display name share one code
    unit_names: list[str] = []
    raw_to_code = np.empty(len(unit_uniques), dtype=np.int64)
    for j, v in enumerate(unit_uniques):
        name = unit_name(v)
        code = named.get(name)
        if code is None:
            code = named[name] = len(unit_names)
            unit_names.append(name)
        raw_to_code[j] = code
    unit = raw_to_code[unit_raw] if len(unit_raw) else np.zeros(0, np.int64)
    width = max(len(unit_names), 1)  # (cluster, unit) pairs as cluster × width + unit
    n = np.bincount(cluster, minlength=n_clusters)
    pair = np.sort(cluster.astype(np.int64) * width + unit)  # distinct (cluster, unit):
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair  # (np.unique hashes: ~4× slower)
    n_units = np.bincount(pair // width, minlength=n_clusters)
    ids = [clean_text(c) for c in cluster_ids.tolist()]
    # most widespread first: units desc, members desc, id asc; ties in first-appearance order (stable)
    order = sorted(range(n_clusters), key=lambda i: (-int(n_units[i]), -int(n[i]), ids[i]))
    if max_clusters is not None:
        order = order[:max_clusters]
    picked = np.zeros(n_clusters, bool)
    picked[order] = True
    rows = np.flatnonzero(picked[cluster]) if n_clusters else np.zeros(0, np.int64)
    first_row = np.full(n_clusters, len(cluster), dtype=np.int64)  # each cluster's first row (its name)
    np.minimum.at(first_row, cluster, np.arange(len(cluster)))
    if max_members is not None and len(rows):
        # breadth first: each unit's first member, then second members, … in file order
        c, u = cluster[rows].astype(np.int64), unit[rows]
        depth = group_rank(c * width + u)
        by = np.lexsort((rows, depth, c))  # cluster, then depth, then file order
        keep = group_rank(c[by]) < max_members
        rows = np.sort(rows[by[keep]])
    chosen = p.iloc[rows]
    chosen = chosen.assign(unit=pd.Series(np.array(unit_names, dtype=object)[unit[rows]] if len(rows) else [],
                                          index=chosen.index, dtype=object))
    members: dict[int, list[dict[str, Any]]] = {}
    for code, r in zip(cluster[rows].tolist(), records(chosen), strict=True):
        r["source"] = names.get(str(r.get("doc_id")), clean_text(r.get("doc_id")))
        members.setdefault(code, []).append(r)
    in_cluster: list[list[int]] = [[] for _ in range(n_clusters)]
    pair = pair[picked[pair // width]]
    for c_code, u_code in zip((pair // width).tolist(), (pair % width).tolist(), strict=True):
        in_cluster[c_code].append(u_code)
    name_values = p[name_col].iloc[first_row[order]].tolist() if order else []
    return [{"id": ids[i], "name": clean_text(name) or ids[i], "members": members.get(i, []),
             "units": sorted(unit_names[u] for u in in_cluster[i]), "n": int(n[i])}
            for i, name in zip(order, name_values, strict=True)]


def _problem_clusters_pandas(p: pd.DataFrame, names: dict[str, str], max_clusters: int | None,
                             max_members: int | None) -> list[dict[str, Any]]:
    """:func:`problem_clusters` with pandas group-bys: any table (missing ids or names, any index)."""
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


def body_sentences(frames: dict[str, pd.DataFrame], columns: tuple[str, ...] = BODY_COLUMNS) -> pd.DataFrame:
    """Report text only (no furniture, TOC lines, table rows), with the unit filled in.

    Only ``columns`` are taken (never the token lists). The index is the row's position in
    ``frames["sentences"]``. (The deliverables work from per-file parts, :class:`SeasonBody`; this is
    the whole-table view the tests and the role table's fallback use.)
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


def source_names(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """doc_id → the file's short name (the path as given can be long)."""
    docs = frame(frames, "documents", ("doc_id", "source"))
    if docs is None:
        return {}
    # tolist(): iterating Arrow-backed columns boxes one value per step (~50 ms for 1,000 files)
    return {str(d): str(src).replace("\\", "/").rsplit("/", 1)[-1] for d, src in
            zip(docs["doc_id"].tolist(), docs["source"].tolist(), strict=True)}


QUOTE_BUDGET = 8_000  # quotes over all units and roles in the HTML and DOCX: 8 per role up to 250 units
MAX_QUOTES, MIN_QUOTES = 8, 2


def quotes_per_role(n_units: int) -> int:
    """Quotes per unit and role: MAX_QUOTES for a small season, fewer as units grow (QUOTE_BUDGET), so
    a 1,000-unit season's digest stays readable and small."""
    return max(MIN_QUOTES, min(MAX_QUOTES, QUOTE_BUDGET // max(4 * n_units, 1)))


QUOTE_COLUMNS = ("doc_id", "article_id", "unit", "section", "idx", "text", "label", "confidence", "theme",
                 "page")

# ------------------------------------------------------------------ per-file parts (issue 8)
#
# A season's digest never holds its sentences. Each input file contributes a *body part* (made once,
# cached with the file): which of its rows are report text, their units, per unit × role counts, and
# for its coded rows (strength/gap/cause/measure) the unit, role and confidence — a few bytes a row —
# plus its own best quote candidates with their idx, and the columns of the rows a 1,000-report
# season's page can show of it (EMBED_RANK). The season combine (:class:`SeasonBody`) ranks on those
# small arrays and takes text, section, theme of the rows it shows from the parts, or — for rows a part
# does not hold (small seasons search every sentence) — from each file's memory-mapped sentences
# (``parts[i]["sentences"]``, a pyarrow Table).

BODY_PART = "body"  # the key of the html/docx part in ``digest.document_parts``
COUNT_LABELS = (*ROLES, "other")
# a file's part carries the columns of its coded rows ranked below this within their unit × role (and of
# its quote candidates): what a 1,000-report season's page shows of it (its search reaches rank 23), a
# few KB; a season needing more of a file (small seasons search every sentence) reads its table
EMBED_RANK = 24
DocTables = dict[str, pd.DataFrame]


def _uint(values: np.ndarray) -> np.ndarray:
    """Non-negative ints in the smallest unsigned dtype that holds them (parts stay a few KB)."""
    top = int(values.max()) if len(values) else 0
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.uint64
    return values.astype(dtype)


def _conf_key(conf: np.ndarray) -> np.ndarray:
    """Confidences compactly and exactly: 1 + 10,000 × c as uint16 when every value is a multiple of
    1e-4 in [0, 1] (the tagger rounds to 4 places; decoding gives back the same float), NaN as 0;
    otherwise the float64 values themselves."""
    finite = conf[~np.isnan(conf)]
    if len(finite) == 0 or (finite.min() >= 0 and finite.max() <= 1
                            and np.array_equal(np.round(finite * 1e4) / 1e4, finite)):
        key = np.zeros(len(conf), dtype=np.uint16)
        ok = ~np.isnan(conf)
        key[ok] = np.round(conf[ok] * 1e4).astype(np.uint16) + 1
        return key
    return conf.astype(np.float64)


def _conf_value(key: np.ndarray) -> np.ndarray:
    """:func:`_conf_key` decoded to floats for ranking, missing as -inf (pandas sorts NaN last)."""
    if key.dtype == np.uint16:
        out = (key.astype(np.float64) - 1) / 1e4
        out[key == 0] = -np.inf
        return out
    return np.where(np.isnan(key), -np.inf, key)


def group_rank(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2… within each group value, in the order given (pandas' groupby().cumcount())."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    by_group = np.argsort(groups, kind="stable")
    sorted_groups = groups[by_group]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[by_group] = np.arange(n) - run_start
    return rank


def body_part(sentences: pd.DataFrame, max_quotes: int = MAX_QUOTES) -> dict[str, Any]:
    """One file's light data for digest.html and digest.docx (see the section comment above).

    Keys: ``n`` (rows of the file's sentences), ``units`` (unit names of its report text, first
    appearance order), ``counts`` (per unit: report sentences, then each of COUNT_LABELS), ``content``
    and ``coded`` (row masks, bit-packed), ``unit``/``label``/``conf`` (per coded row: unit index, role
    index into ROLES, confidence key), ``quotes`` (coded-row indexes of the file's best ``max_quotes``
    per unit × role: confidence high first, then idx, then row order) with their ``quote_idx``;
    ``shown`` (coded-row indexes of the rows ranked below ``shown_rank`` = EMBED_RANK in their unit ×
    role, confidence high first then row order, plus the quote candidates) and ``shown_columns`` (their
    QUOTE_COLUMNS, compressed: :func:`_shown_columns`), so a big season's page opens no file.
    """
    s = sentences
    n = len(s)
    ok = n > 0 and all(c in s.columns for c in ("unit", "label", "text"))  # as body_sentences requires
    # plain numpy and dict work: pandas' per-call overhead on a file's few hundred rows would dominate
    if not ok:
        content = np.zeros(n, bool)
    elif "kind" in s.columns:
        kinds = s["kind"].to_numpy(dtype=object, na_value=None)
        content = np.zeros(n, bool)
        for k in CONTENT_KINDS:
            content |= kinds == k
    else:
        content = np.ones(n, bool)
    pos = np.flatnonzero(content)
    raw_units = s["unit"].to_numpy(dtype=object, na_value=None)[pos] if ok else np.zeros(0, dtype=object)
    named: dict[Any, int] = {}
    units: list[str] = []
    unit_codes = np.empty(len(pos), dtype=np.int64)
    seen: dict[str, int] = {}
    for i, v in enumerate(raw_units.tolist()):
        code = named.get(v)
        if code is None:  # unit_name once per distinct value; units numbered by first appearance
            name = unit_name(v)
            code = named[v] = seen.setdefault(name, len(seen))
            if code == len(units):
                units.append(name)
        unit_codes[i] = code
    labels = s["label"].to_numpy(dtype=object, na_value=None)[pos] if ok else np.zeros(0, dtype=object)
    counts = np.zeros((len(units), 1 + len(COUNT_LABELS)), dtype=np.int64)
    counts[:, 0] = np.bincount(unit_codes, minlength=len(units))
    role = np.full(len(pos), -1, dtype=np.int64)
    for j, lab in enumerate(COUNT_LABELS, start=1):
        hit = labels == lab
        counts[:, j] = np.bincount(unit_codes[hit], minlength=len(units))
        if lab in ROLES:
            role[hit] = j - 1
    is_coded = role >= 0
    coded_mask = np.zeros(n, bool)
    coded_mask[pos[is_coded]] = True
    cpos, cunit, crole = pos[is_coded], unit_codes[is_coded], role[is_coded]
    conf = _floats(s, "confidence", cpos)  # no confidence column: all tie, as before
    idx = _floats(s, "idx", cpos)
    key = _conf_key(conf)
    # the file's quote candidates: unit_profiles' order (confidence desc, idx asc, row order)
    order = np.lexsort((cpos, idx, -_conf_value(key)))
    rank = group_rank((cunit * len(ROLES) + crole)[order])
    quotes = np.sort(order[rank < max_quotes])
    # rows a big season's page may show (html.embedded_rows: the most confident of each unit × role in
    # turn, season order on ties; a row's rank in the season is at least its rank in its file) and the
    # quote candidates: their columns ride in the part, so the combine opens no file for them
    search_order = np.lexsort((cpos, -_conf_value(key)))
    search_rank = group_rank((cunit * len(ROLES) + crole)[search_order])
    picked = np.zeros(len(cpos), bool)
    picked[search_order[search_rank < EMBED_RANK]] = True
    picked[quotes] = True
    return {"n": n, "units": units, "counts": counts.astype(np.int32),
            "content": np.packbits(content), "coded": np.packbits(coded_mask),
            "unit": _uint(cunit), "label": crole.astype(np.uint8), "conf": key,
            "quotes": _uint(quotes), "quote_idx": _compact_floats(idx[quotes]), "max_quotes": max_quotes,
            "shown": _uint(np.flatnonzero(picked)), "shown_rank": EMBED_RANK, "shown_columns": _shown_columns(s, cpos[picked])}


def _shown_columns(s: pd.DataFrame, rows: np.ndarray) -> tuple[str, int, bytes]:
    """QUOTE_COLUMNS of these rows as the combine would read them from the file's Arrow table
    (``to_pylist``; NaN as None; a column the file lacks is all None), {column: values} pickled and
    compressed: (codec, pickled size, bytes). zstd (pyarrow's) halves report text, ~7 KB a file, and
    unpacks in ~0.03 ms, twice as fast as zlib. Repeated strings are one object (pickle writes them
    once: units, sections, themes repeat)."""
    present = [c for c in QUOTE_COLUMNS if c in s.columns]
    take = pa.array(rows, type=pa.int64())
    out: dict[str, list[Any]] = {}
    for c in QUOTE_COLUMNS:
        if c not in present:
            out[c] = [None] * len(rows)
            continue
        # column by column (what Table.from_pandas does per column, without a frame of the rows: 3× faster)
        col = pa.Array.from_pandas(s[c]).take(take)
        values = col.to_pylist()
        if pa.types.is_floating(col.type):
            values = [_plain(v) for v in values]
        elif c != "text":
            seen: dict[Any, Any] = {}
            values = [seen.setdefault(v, v) for v in values]
        out[c] = values
    data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
    if pa.Codec.is_available("zstd"):
        return "zstd", len(data), _codec("zstd").compress(data, asbytes=True)
    return "zlib", len(data), zlib.compress(data, 6)


@cache
def _codec(name: str) -> pa.Codec:
    return pa.Codec(name, 3)


def _unpack_shown(held: tuple[str, int, bytes]) -> dict[str, list[Any]]:
    codec, size, data = held
    raw = zlib.decompress(data) if codec == "zlib" else _codec(codec).decompress(data, size, asbytes=True)
    return pickle.loads(raw)


def _take(values: list[Any], at: list[int]) -> list[Any]:
    """values[i] for i in at (itemgetter: one C call)."""
    if len(at) == 1:
        return [values[at[0]]]
    return list(itemgetter(*at)(values)) if at else []


def _compact_floats(values: np.ndarray) -> np.ndarray:
    """Whole numbers as int32 when they fit (idx), else the floats themselves."""
    if np.all(np.isfinite(values)) and np.array_equal(values, np.round(values)) and (
            len(values) == 0 or (values.min() >= -2**31 and values.max() < 2**31)):
        return values.astype(np.int32)
    return values


def _floats(s: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """A numeric column's values at ``rows`` as float64 (missing as NaN; an absent column as 0)."""
    if column not in s.columns:
        return np.zeros(len(rows))
    col = s[column]
    if not pd.api.types.is_numeric_dtype(col.dtype):
        col = pd.to_numeric(col, errors="coerce")
    return col.to_numpy(dtype=np.float64, na_value=np.nan)[rows]


def _mask(packed: np.ndarray, n: int) -> np.ndarray:
    return np.unpackbits(packed, count=n).astype(bool)


def _objects(values: list[Any]) -> np.ndarray:
    """A list as a 1-d object array, element for element (np.array would nest sequences)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _plain(v: Any) -> Any:
    """A fetched cell as the templates expect it: missing (None, NaN) as None."""
    return None if v is None or (isinstance(v, float) and v != v) else v


class SeasonBody:
    """The season's report text as the digest pages need it, combined from per-file body parts.

    ``parts``: one mapping per input file in input order, holding the body part under BODY_PART and
    the file's sentences (pyarrow Table) under "sentences"; a part is read once here (it may be loaded
    from disk on access) and the sentences only for the rows shown. A file without a body part (its
    part failed) gets one made from its sentences.
    """

    def __init__(self, parts: Sequence[Mapping[str, Any]]) -> None:
        self.parts = parts
        loaded: list[dict[str, Any]] = []
        for p in parts:
            try:
                loaded.append(p[BODY_PART])
            except KeyError:
                loaded.append(body_part(p[SENTENCES].to_pandas()))
        self.files = loaded
        self.units: list[str] = sorted({u for b in loaded for u in b["units"]})
        code = {u: i for i, u in enumerate(self.units)}
        counts = np.zeros((len(self.units), 1 + len(COUNT_LABELS)), dtype=np.int64)
        files, pos, unit, label, conf, q_rows, q_idx = [], [], [], [], [], [], []
        shown_keys: list[np.ndarray] = []
        candidates: list[np.ndarray] = []
        shown_rank = EMBED_RANK
        shown: dict[str, list[Any]] = {c: [] for c in QUOTE_COLUMNS}
        offset = 0
        float_conf = any(b["conf"].dtype != np.uint16 for b in loaded)
        for f, b in enumerate(loaded):
            umap = np.array([code[u] for u in b["units"]], dtype=np.int64)
            if len(umap):
                np.add.at(counts, umap, b["counts"].astype(np.int64))
            cpos = np.flatnonzero(_mask(b["coded"], b["n"]))
            files.append(np.full(len(cpos), f, dtype=np.int32))
            pos.append(cpos)
            unit.append(umap[b["unit"].astype(np.int64)] if len(cpos) else np.zeros(0, np.int64))
            label.append(b["label"].astype(np.int64))
            conf.append(_conf_value(b["conf"]) if float_conf else b["conf"])
            q_rows.append(b["quotes"].astype(np.int64) + offset)
            if "shown" in b:  # rows whose columns the part holds (keys sorted: files, then rows, in order)
                held_rows = b["shown"].astype(np.int64)
                shown_keys.append(f * (1 << 32) + cpos[held_rows])
                candidates.append(held_rows + offset)
                shown_rank = min(shown_rank, b["shown_rank"])
                held = _unpack_shown(b["shown_columns"])
                for c in QUOTE_COLUMNS:
                    shown[c].extend(held[c])
            q_idx.append(np.asarray(b["quote_idx"], dtype=np.float64))
            offset += len(cpos)
        self.counts = pd.DataFrame(counts, index=pd.Index(self.units, name="unit"),
                                   columns=["n", *COUNT_LABELS])
        cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt))  # noqa: E731
        self.file, self.pos = cat(files, np.int32), cat(pos, np.int64)
        self.unit, self.label = cat(unit, np.int64), cat(label, np.int64)
        conf_all = cat(conf, np.float64)
        self.conf = conf_all if float_conf else _conf_value(conf_all.astype(np.uint16))
        self.quote_rows, self.quote_idx = cat(q_rows, np.int64), cat(q_idx, np.float64)
        self.max_quotes = min((b["max_quotes"] for b in loaded), default=MAX_QUOTES)
        self.shown_keys = cat(shown_keys, np.int64)
        # coded rows (indexes into file/pos/…) of every row ranked below shown_rank within its file's
        # unit × role, quote candidates included, when every part lists them (html.embedded_rows)
        self.candidates: np.ndarray | None = cat(candidates, np.int64) if len(candidates) == len(loaded) else None
        self.shown_rank = shown_rank
        self.shown = shown
        # the page's search rows once chosen for a cap (html.prepare), and rows read ahead (prefetch)
        self.search: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None
        self._pre: tuple[np.ndarray, tuple[str, ...], dict[str, np.ndarray]] | None = None

    @classmethod
    def from_frames(cls, frames: dict[str, pd.DataFrame], max_quotes: int = MAX_QUOTES) -> SeasonBody:
        """The same, from whole frames (old callers): parts built per doc_id by :func:`body_part`."""
        return cls([FrameParts({BODY_PART: body_part(d[SENTENCES], max_quotes)}, d[SENTENCES])
                    for d in docs_from_frames(frames)])

    @property
    def total(self) -> int:
        """Report sentences in the season."""
        return int(self.counts["n"].sum())

    def content_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(file, row) of every report sentence, in season order."""
        rows = [np.flatnonzero(_mask(b["content"], b["n"])) for b in self.files]
        files = [np.full(len(r), f, dtype=np.int32) for f, r in enumerate(rows)]
        return (np.concatenate(files) if files else np.zeros(0, np.int32),
                np.concatenate(rows) if rows else np.zeros(0, np.int64))

    def quotes(self, per_role: int) -> tuple[np.ndarray, np.ndarray]:
        """(file, row) of each unit × role's ``per_role`` most confident sentences (ties: lower idx,
        then season order), grouped by unit × role in that order: the best of the files' bests."""
        if per_role > self.max_quotes:
            raise ValueError(f"parts hold {self.max_quotes} quote candidates per unit and role, not {per_role}")
        r = self.quote_rows
        order = np.lexsort((self.pos[r], self.file[r], self.quote_idx, -self.conf[r]))
        r = r[order]
        keep = group_rank(self.unit[r] * len(ROLES) + self.label[r]) < per_role
        return self.file[r[keep]], self.pos[r[keep]]

    def prefetch(self, files: np.ndarray, rows: np.ndarray, columns: Sequence[str]) -> None:
        """Read these rows' columns now, once per file, and serve later :meth:`fetch` calls for any of
        them from memory (the page's search rows include its quotes: one pass over the files)."""
        keys = self._key(files, rows)
        if len(self.shown_keys) and set(columns) <= set(QUOTE_COLUMNS) and np.isin(keys, self.shown_keys).all():
            self._pre = None  # the parts hold them all: fetches take them from there
            return
        if len(keys) > 1 and np.any(np.diff(keys) <= 0):  # lookups below need them sorted, once each
            keys, first = np.unique(keys, return_index=True)
            files, rows = files[first], rows[first]
        got = self._read(files, rows, columns)
        self._pre = (keys, tuple(columns), {c: _objects(v) for c, v in got.items()})

    def _key(self, files: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return files.astype(np.int64) * (1 << 32) + rows.astype(np.int64)

    def fetch(self, files: np.ndarray, rows: np.ndarray, columns: Sequence[str]) -> dict[str, list[Any]]:
        """Columns of the given rows (as Python lists, in the order given), read from the files'
        sentences only for these rows; a column a file lacks comes back as None."""
        pre = self._pre
        if pre is not None and set(columns) <= set(pre[1]):
            keys, at = self._key(files, rows), np.searchsorted(pre[0], self._key(files, rows))
            if len(keys) == 0 or (at.max() < len(pre[0]) and np.array_equal(pre[0][at], keys)):
                return {c: pre[2][c][at].tolist() for c in columns}
        return self._read(files, rows, columns)

    def _read(self, files: np.ndarray, rows: np.ndarray, columns: Sequence[str]) -> dict[str, list[Any]]:
        """The rows' columns: from the parts where they hold them, the rest from the files' tables."""
        keys = self.shown_keys
        if len(files) == 0 or len(keys) == 0 or not set(columns) <= set(QUOTE_COLUMNS):
            return self._read_tables(files, rows, columns)
        want = self._key(files, rows)
        at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        hit = keys[at] == want
        if hit.all():
            picks = at.tolist()
            return {c: _take(self.shown[c], picks) for c in columns}
        miss = np.flatnonzero(~hit)
        rest = self._read_tables(files[miss], rows[miss], columns)
        picks = at[hit].tolist()
        out: dict[str, list[Any]] = {}
        for c in columns:
            values = np.empty(len(want), dtype=object)
            values[hit] = _objects(_take(self.shown[c], picks))
            values[miss] = _objects(rest[c])
            out[c] = values.tolist()
        return out

    def _read_tables(self, files: np.ndarray, rows: np.ndarray, columns: Sequence[str]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {c: [] for c in columns}
        if len(files) == 0:
            return out
        in_order = bool(np.all(np.diff(files) >= 0))  # the search rows come in season order
        order = np.arange(len(files)) if in_order else np.argsort(files, kind="stable")
        sorted_files = files[order]
        bounds = np.r_[0, np.flatnonzero(np.diff(sorted_files)) + 1, len(order)]
        tables = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            t = self.parts[int(sorted_files[a])][SENTENCES]
            names = set(t.column_names)
            t = t.select([c for c in columns if c in names]).take(pa.array(rows[order[a:b]]))
            if len(names) < len(columns) or not names.issuperset(columns):
                t = pa.table({c: t.column(c) if c in names else pa.nulls(len(t)) for c in columns})
            tables.append(t)
        table = pa.concat_tables(tables, promote_options="permissive")
        del tables
        picks = None
        if not in_order:
            back = np.empty(len(order), dtype=np.int64)
            back[order] = np.arange(len(order))
            picks = back.tolist()
        for c in columns:
            values = table.column(c).to_pylist()
            if pa.types.is_floating(table.column(c).type):  # NaN as missing (records() did the same)
                values = [_plain(v) for v in values]
            out[c] = values if picks is None else [values[i] for i in picks]
        return out


def season_body(frames: dict[str, pd.DataFrame], parts: Sequence[Mapping[str, Any]] | None = None,
                body: SeasonBody | None = None) -> SeasonBody:
    """The SeasonBody a writer works from: given, from parts, or built from frames["sentences"]."""
    if body is not None:
        return body
    return SeasonBody(parts) if parts is not None else SeasonBody.from_frames(frames)


def _keywords(frames: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    kw = frame(frames, "keywords", ("unit", "word"))
    words: dict[str, list[str]] = {}
    if kw is not None:
        # a unit's 15 best-scored words, as a group-by's head(15) would give them, without a Python
        # step per unit (1,000 units)
        order = kw.sort_values("score", ascending=False, kind="stable") if "score" in kw.columns else kw
        units = map_unique(order["unit"], unit_name)
        top = (units.groupby(units, sort=False).cumcount() < 15).to_numpy()
        for unit, word in zip(units[top].tolist(), order["word"][top].tolist(), strict=True):
            words.setdefault(unit, []).append(clean_text(word))
    return words


def unit_profiles(frames: dict[str, pd.DataFrame], per_role: int = 8, body: SeasonBody | None = None,
                  parts: Sequence[Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per unit (sorted by name): report sentence counts and the most confident quotes of each role
    (highest first, ties in idx then season order), plus its keywords.

    Ranking works on the parts' small arrays; text, section and theme are fetched for the quotes only.
    Without ``body`` or ``parts`` the parts are made from ``frames["sentences"]``.
    """
    if body is None:
        body = SeasonBody(parts) if parts is not None else SeasonBody.from_frames(
            frames, max(MAX_QUOTES, per_role))
    words = _keywords(frames)
    files, rows = body.quotes(per_role)
    got = body.fetch(files, rows, QUOTE_COLUMNS)
    quotes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for values in zip(*(got[c] for c in QUOTE_COLUMNS), strict=True):
        r = dict(zip(QUOTE_COLUMNS, values, strict=True))
        r["unit"] = unit_name(r["unit"])
        quotes.setdefault((r["unit"], r["label"]), []).append(r)
    counts = body.counts
    return [{"unit": unit, "n": int(row[0]),
             "roles": {role: {"n": int(row[1 + j]), "quotes": quotes.get((unit, role), [])}
                       for j, role in enumerate(ROLES)},
             "keywords": words.get(unit, [])}
            for unit, row in zip(counts.index, counts.to_numpy().tolist(), strict=True) if row[0]]


def role_pivot(frames: dict[str, pd.DataFrame], body: SeasonBody | None = None) -> pd.DataFrame:
    """unit × role sentence counts (from the matrix when present, else from the parts' counts or the
    sentences)."""
    m = frame(frames, "matrix", ("unit", "label", "n"))
    if m is None and body is not None:
        return body.counts[list(COUNT_LABELS)].rename_axis(columns="label").astype(int)
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


def unit_theme_counts(m: pd.DataFrame) -> pd.DataFrame:
    """unit × theme sums of ``n`` (units and themes sorted, 0 where absent): what
    ``pivot_table(index="unit", columns="theme", values="n", aggfunc="sum", fill_value=0)`` gives, at a
    fraction of its cost (a group-by and an unstack; it runs once per role and deliverable)."""
    if m.empty:
        return pd.DataFrame(index=pd.Index([], name="unit"), columns=pd.Index([], name="theme"), dtype="int64")
    return m.groupby(["unit", "theme"])["n"].sum().unstack(fill_value=0)

