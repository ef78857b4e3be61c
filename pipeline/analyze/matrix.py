"""Unit × theme × role counts and shares."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .text import MAX_PATCHED, UNKNOWN_UNIT, ipc_bytes, read_ipc

CONTENT_KINDS = ("body", "heading")
OTHER_THEME = "其他"
_KEYS = ["unit", "theme", "label"]


def content_sentences(sentences: pd.DataFrame) -> pd.DataFrame:
    """Sentences that are report text (not furniture, TOC lines or table rows)."""
    kind = sentences["kind"]
    if isinstance(kind.dtype, pd.StringDtype) and kind.dtype.storage == "pyarrow":
        # every part asks again of the frame already filtered: Arrow answers ~5x faster than isin
        keep = np.asarray(pc.is_in(pa.array(kind), value_set=_content_kinds()), dtype=bool)
    else:
        keep = kind.isin(CONTENT_KINDS).to_numpy()
    return sentences if keep.all() else sentences[keep]  # already content only: no copy


@cache
def _content_kinds() -> pa.Array:
    return pa.array(CONTENT_KINDS, pa.large_string())


def matrix_part(sentences: pd.DataFrame) -> pd.DataFrame:
    """One file's (unit, theme, label) sentence counts ``n``: what the season matrix sums."""
    s = content_sentences(sentences)
    s = s.assign(unit=s["unit"].replace("", UNKNOWN_UNIT), theme=s["theme"].replace("", OTHER_THEME))
    return s.groupby(_KEYS, sort=True).size().rename("n").reset_index()


def matrix_table(sentences: pd.DataFrame) -> pa.Table:
    """``matrix_part`` as the Arrow table a file's part holds. A run's rows (unit, theme and label
    all text) are counted in Python, without a pandas groupby on a few hundred rows (the table
    ``pa.Table.from_pandas(matrix_part(...))`` gives, pandas metadata included); anything else
    goes through ``matrix_part``."""
    s = content_sentences(sentences)
    cols = [s[c].tolist() for c in _KEYS] if len(s) and set(_KEYS) <= set(s.columns) else None
    if cols is None or not all(type(v) is str for c in cols for v in c):
        return pa.Table.from_pandas(matrix_part(s), preserve_index=False)
    unit, theme, label = cols
    counts = Counter(zip([u or UNKNOWN_UNIT for u in unit], [t or OTHER_THEME for t in theme], label,
                         strict=True))
    keys = sorted(counts)  # as groupby(sort=True): by unit, theme, label (code points)
    schema = _part_schema()
    arrays = [pa.array([k[i] for k in keys], schema.field(i).type) for i in range(3)]
    return pa.Table.from_arrays([*arrays, pa.array([counts[k] for k in keys], pa.int64())],
                                schema=schema)


@cache
def _part_schema() -> pa.Schema:
    """The schema (pandas metadata included) of ``matrix_part``'s frame of a run's rows."""
    empty = pd.DataFrame({c: pd.Series([], dtype="str") for c in _KEYS} | {"n": pd.Series([], dtype="int64")})
    return pa.Schema.from_pandas(empty, preserve_index=False)


#: memo entry: the season's counts as last stored: each file's (one record batch per file) and
#: their sum
SUM_KEY = "matrix-sum-v1"


def combine_matrix(parts: Iterable[pd.DataFrame | pa.Table], memo: Any = None,
                   digests: Sequence[str | None] | None = None) -> pd.DataFrame:
    """matrix.parquet from the files' counts (frames or Arrow tables): one row per unit × theme ×
    label, ``n`` and ``share`` of the unit's sentences. Counts add up, so this equals counting
    the whole season at once. ``memo`` with ``digests`` (each file's ``table_digest`` of its
    part; ``parts`` then a sequence): the sum last stored, with the counts of the files changed
    since taken out (as stored) and put in (as today) — integers, the recount's sums exactly —
    instead of loading and adding 1,000 parts."""
    if (memo is not None and digests is not None and isinstance(parts, Sequence)
            and len(parts) > 1 and all(digests)):
        m = _summed(parts, digests, memo)
        if m is not None:
            return _finish(m)
    frames = [p for p in parts if len(p)]
    if not frames:
        return _finish(matrix_part(pd.DataFrame(columns=["unit", "theme", "label", "kind"])))
    if all(isinstance(f, pa.Table) for f in frames):  # one concatenation in Arrow, one conversion
        m = pa.concat_tables(frames, promote_options="permissive").to_pandas()
    else:
        m = pd.concat([f.to_pandas() if isinstance(f, pa.Table) else f for f in frames],
                      ignore_index=True)
    if len(frames) > 1:  # a unit may report in several files
        m = m.groupby(_KEYS, sort=True)["n"].sum().reset_index()
    return _finish(m)


def _summed(parts: Sequence[Any], digests: Sequence[Any], memo: Any) -> pd.DataFrame | None:
    """The season's summed counts (before ``_finish``) by the memo (``combine_matrix``); None
    when a part is not an Arrow table (the frame path)."""
    n = len(parts)
    st = memo.get(SUM_KEY)
    if isinstance(st, dict) and len(st.get("digests", ())) == n:
        changed = [i for i in range(n) if st["digests"][i] != digests[i]]
        if len(changed) <= MAX_PATCHED:
            base, offs = read_ipc(st["table"]), st["offsets"]
            pieces = [read_ipc(st["sum"])]
            for i in changed:
                old = base.slice(offs[i], offs[i + 1] - offs[i])
                if old.num_rows:
                    pieces.append(old.set_column(old.schema.get_field_index("n"), "n",
                                                 pc.negate(old["n"])))
                new = parts[i]
                if not isinstance(new, pa.Table):
                    return None
                if new.num_rows:
                    pieces.append(new)
            m = pa.concat_tables(pieces, promote_options="permissive").to_pandas()
            m = m.groupby(_KEYS, sort=True)["n"].sum().reset_index()
            return m[m["n"] != 0].reset_index(drop=True)  # a recount has no empty cell
    tables = [parts[i] for i in range(n)]
    frames = [t for t in tables if len(t)]
    if not frames or not all(isinstance(t, pa.Table) for t in tables):
        return None
    every = pa.concat_tables(frames, promote_options="permissive")
    m = every.to_pandas()
    if len(frames) > 1:  # a unit may report in several files
        m = m.groupby(_KEYS, sort=True)["n"].sum().reset_index()
    rows = np.cumsum([0, *(t.num_rows for t in tables)]).tolist()
    memo[SUM_KEY] = {"digests": list(digests), "offsets": rows, "table": ipc_bytes(every),
                     "sum": ipc_bytes(pa.Table.from_pandas(m, preserve_index=False))}
    return m


def _finish(m: pd.DataFrame) -> pd.DataFrame:
    m = m.copy()
    totals = m.groupby("unit")["n"].transform("sum")
    m["share"] = (m["n"] / totals).round(6)
    return m.sort_values(_KEYS).reset_index(drop=True)


def role_matrix(sentences: pd.DataFrame) -> pd.DataFrame:
    """One row per unit × theme × label: ``n`` sentences and their ``share`` of the unit's."""
    return combine_matrix([matrix_part(sentences)])
