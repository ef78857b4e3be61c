"""Issue 8: tables.xlsx and corpus.qdpx assembled from per-file compressed fragments.

Real run over the digest test's three reports (test_digest.make_inputs); parts built per file exactly
as the run builds them (DocTables from `pipeline.tables`' frames grouped by doc_id); everything
written is read back with zipfile (CRC checked), openpyxl, pandas and lxml.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from lxml import etree
from test_digest import QDA, make_inputs

from pipeline.digest import qdpx, xlsx
from pipeline.digest.zipparts import (
    TREE_MIN,
    ZipWriter,
    crc32_combine,
    crc32_concat,
    crc32_shift,
    deflate,
    stored,
)
from pipeline.run import RunConfig, load_frames, run
from pipeline.season import FolderMemo


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    base = tmp_path_factory.mktemp("parts")
    run(RunConfig(inputs=[str(make_inputs(base / "in"))], out=base / "out", season="分片"))
    return load_frames(base / "out")


def doc_tables(frames: dict[str, pd.DataFrame]) -> list[dict[str, pd.DataFrame]]:
    """One DocTables per file, in the documents' order (what the run hands document_parts)."""
    s = frames["sentences"]
    return [{"documents": frames["documents"][frames["documents"]["doc_id"] == d].reset_index(drop=True),
             "sentences": s[s["doc_id"] == d].reset_index(drop=True)}
            for d in frames["documents"]["doc_id"]]


def run_parts(frames: dict[str, pd.DataFrame]) -> list[dict[str, object]]:
    return [{"xlsx": xlsx.document_part(d), "qdpx": qdpx.document_part(d),
             "sentences": pa.Table.from_pandas(d["sentences"], preserve_index=False)} for d in doc_tables(frames)]


# ------------------------------------------------------------------------------------------ zipparts

def test_crc32_combine_matches_zlib_on_random_data() -> None:
    rnd = random.Random(8)
    for _ in range(300):
        a, b = os.urandom(rnd.randrange(0, 3000)), os.urandom(rnd.choice([0, 1, 7, rnd.randrange(0, 100_000)]))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b), crc32_shift(len(b))) == zlib.crc32(a + b)
    assert crc32_combine(zlib.crc32(b"x"), zlib.crc32(b"y"), 1) != zlib.crc32(b"yx")  # order matters


def test_crc32_concat_tree_matches_zlib_for_many_pieces() -> None:
    """The numpy pairwise combine (used from TREE_MIN pieces on) gives zlib's CRC of the joined
    data, for odd and even counts, empty-ish and long pieces."""
    rnd = random.Random(10)
    for n in (TREE_MIN - 1, TREE_MIN, TREE_MIN + 1, 3 * TREE_MIN + 7):
        pieces = [os.urandom(rnd.choice([1, 2, rnd.randrange(1, 400)])) for _ in range(n)]
        got = crc32_concat([zlib.crc32(p) for p in pieces], [crc32_shift(len(p)) for p in pieces])
        assert got == zlib.crc32(b"".join(pieces)), n
    assert crc32_concat([], []) == 0


def test_fragments_concatenate_into_one_valid_entry(tmp_path: Path) -> None:
    pieces = [b"<a>" * 5000, "中文内容".encode() * 9000, b"", os.urandom(70_000), b"tail"]
    buf = io.BytesIO()
    z = ZipWriter(buf)
    z.write("small.xml", b"<x/>")
    z.write_pieces("big.xml", [stored(b"HEAD" * 20_000)] + [deflate(p) for p in pieces] + [stored(b"END")])
    z.close()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        assert zf.testzip() is None  # every CRC checked
        assert zf.read("big.xml") == b"HEAD" * 20_000 + b"".join(pieces) + b"END"
        assert zf.read("small.xml") == b"<x/>"
    # the concatenated raw stream inflates as one stream too (what any reader does)
    body = [deflate(p) for p in pieces]
    assert zlib.decompress(b"".join(p.data for p in body) + b"\x03\x00", -15) == b"".join(pieces)


# ------------------------------------------------------------------------------------------ XLSX

def test_xlsx_from_parts_same_cells_as_from_frames_and_byte_stable(frames: dict[str, pd.DataFrame],
                                                                    tmp_path: Path) -> None:
    parts = run_parts(frames)
    xlsx.write_xlsx(frames, tmp_path / "parts.xlsx", parts)
    xlsx.write_xlsx(frames, tmp_path / "again.xlsx", run_parts(frames))
    counts = xlsx.write_xlsx(frames, tmp_path / "frames.xlsx")  # old callers: no parts
    assert (tmp_path / "parts.xlsx").read_bytes() == (tmp_path / "again.xlsx").read_bytes()
    assert (tmp_path / "parts.xlsx").read_bytes() == (tmp_path / "frames.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "parts.xlsx") as z:
        assert z.testzip() is None
    wb = openpyxl.load_workbook(tmp_path / "parts.xlsx")
    ws = wb["sentences"]
    header = [c.value for c in ws[1]]
    s = frames["sentences"]
    assert ws.max_row == len(s) + 1 == counts["sentences"] + 1
    body = list(ws.iter_rows(min_row=2, values_only=True))
    for col in ("idx", "text", "label", "confidence", "doc_id"):
        got = [r[header.index(col)] for r in body]
        assert got == s[col].tolist(), col
    pages = [r[header.index("page")] for r in body]
    assert pages == [None if pd.isna(p) else int(p) for p in s["page"]]  # numbers stay numbers
    assert all(isinstance(p, int) for p in pages if p is not None)
    assert [r[header.index("theme")] for r in body] == [t or None for t in s["theme"]]  # empty → empty cell
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:M{len(s) + 1}"
    # pandas reads every sheet back with the frames' row counts
    sheets = pd.read_excel(tmp_path / "parts.xlsx", sheet_name=None)
    for name in ("matrix", "problems", "figures", "copies", "keywords", "documents", "articles"):
        assert len(sheets[name]) == len(frames[name]), name
    if len(frames["figures"]):
        assert sheets["figures"]["value"].tolist() == frames["figures"]["value"].tolist()


def test_xlsx_sentence_count_taken_from_documents_is_checked(frames: dict[str, pd.DataFrame],
                                                             tmp_path: Path) -> None:
    """The sentences sheet is begun with the documents table's sentence count (no second read of the
    fragments); a count that is off costs a second writing, never a wrong sheet."""
    parts = run_parts(frames)
    xlsx.write_xlsx(frames, tmp_path / "right.xlsx", parts)
    for delta in (1, -1, -10**7):
        docs = frames["documents"].copy()
        docs.loc[0, "n_sentences"] += delta
        xlsx.write_xlsx(dict(frames, documents=docs), tmp_path / "off.xlsx", parts)
        with zipfile.ZipFile(tmp_path / "right.xlsx") as a, zipfile.ZipFile(tmp_path / "off.xlsx") as b:
            assert b.testzip() is None
            for name in ("xl/worksheets/sheet1.xml", "xl/workbook.xml"):
                assert a.read(name) == b.read(name), (delta, name)


def test_xlsx_cells_cleaned_escaped_and_never_formulas(frames: dict[str, pd.DataFrame], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    s = frames["sentences"].copy()
    tricky = ["=SUM(A1:A9)", "控制\x01字符\x1f", "长" * 40_000, "  前后空格\u3000", "a & b <c> \"d\"", ""]
    for i, t in enumerate(tricky):
        s.loc[i, "text"] = t
    f = dict(frames, sentences=s)
    xlsx.write_xlsx(f, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["sentences"]
    col = [c.value for c in ws[1]].index("text") + 1
    got = [ws.cell(2 + i, col) for i in range(len(tricky))]
    assert got[0].value == "=SUM(A1:A9)" and got[0].data_type == "s"
    assert got[1].value == "控制字符"
    assert len(got[2].value) == xlsx.CELL_LIMIT
    assert got[3].value == "  前后空格\u3000"  # white space kept
    assert got[4].value == "a & b <c> \"d\""
    assert got[5].value is None
    # a big season table (problems-like) through the block memo: same cells, memo reused
    big = pd.concat([f["sentences"][["doc_id", "idx", "text", "confidence", "page"]]] * 40, ignore_index=True)
    memo: dict[str, object] = {}
    for name in ("a", "b"):
        xlsx.write_xlsx({"problems": big}, tmp_path / f"{name}.xlsx", memo=memo)
    assert memo and (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    xlsx.write_xlsx({"problems": big}, tmp_path / "nomemo.xlsx")
    back = pd.read_excel(tmp_path / "a.xlsx", sheet_name="problems")
    assert back.equals(pd.read_excel(tmp_path / "nomemo.xlsx", sheet_name="problems"))
    assert back["idx"].tolist() == big["idx"].tolist()
    plain = big.index % len(s) >= len(tricky)  # rows not among the tricky ones
    assert back["text"][plain].tolist() == big["text"][plain].tolist()

    # a rerun after a change (one row edited, one inserted): only the blocks holding them are made
    # again, and the file is the one an empty memo gives, with the cells the memo-less writer gives
    assert len(big) >= xlsx.MEMO_MIN_ROWS
    changed = big.copy()
    changed.loc[len(big) // 2, "text"] = "改过的一句"
    changed = pd.concat([changed.iloc[:100], changed.iloc[[7]], changed.iloc[100:]], ignore_index=True)
    made = rendered_rows(monkeypatch)
    xlsx.write_xlsx({"problems": changed}, tmp_path / "warm.xlsx", memo=memo)
    assert 0 < sum(made) <= 12 * xlsx.BLOCK_ROWS  # a few blocks, not the table
    xlsx.write_xlsx({"problems": changed}, tmp_path / "cold.xlsx", memo={})
    assert (tmp_path / "warm.xlsx").read_bytes() == (tmp_path / "cold.xlsx").read_bytes()
    xlsx.write_xlsx({"problems": changed}, tmp_path / "whole.xlsx")
    with zipfile.ZipFile(tmp_path / "warm.xlsx") as a, zipfile.ZipFile(tmp_path / "whole.xlsx") as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())  # same XML, only cut differently
    (pack,) = [v for k, v in memo.items() if k.startswith("xlsx-blocks") and "+" not in k]
    assert len(pack[0]) <= len(changed) // 4  # this season's blocks only (the old version's dropped)


def rendered_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of each block the writer renders from here on (not taken from the memo)."""
    made: list[int] = []
    render = xlsx._render_blocks

    def counting(columns: list[object], names: list[str], wrap: set[str], edges: np.ndarray,
                 blocks: list[int]) -> list[object]:
        made.extend(int(edges[i + 1] - edges[i]) for i in blocks)
        return render(columns, names, wrap, edges, blocks)

    monkeypatch.setattr(xlsx, "_render_blocks", counting)
    return made


def season_table(frames: dict[str, pd.DataFrame], copies: int = 30) -> pd.DataFrame:
    """A problems-like season table from the run's real sentences, big enough for the block memo:
    the reports repeated under other file ids (so the same sentence stands in many rows, as the
    season's template sentences do), with text, short ids, numbers, booleans and missing values."""
    s = frames["sentences"]
    out = []
    for k in range(copies):
        out.append(pd.DataFrame({
            "cluster_id": [f"gap-{(i * 7 + k) % 41:03d}" for i in range(len(s))],
            "label": s["label"].astype("str"),
            "doc_id": s["doc_id"].astype("str") + f"{k:02d}",
            "text": s["text"].astype("str"),
            "idx": s["idx"].astype("int64"),
            "confidence": s["confidence"].astype("float64"),
            "is_target": (s["idx"] % 3 == 0).astype(bool),
            "page": pd.array([None if i % 5 else k for i in range(len(s))], dtype="Int64"),
            "n_members": len(s) + k,
        }))
    # (rows of a group together, as the problems table has them)
    return pd.concat(out, ignore_index=True).sort_values("cluster_id", kind="stable", ignore_index=True)


def chunked(df: pd.DataFrame, pieces: int) -> pd.DataFrame:
    """The same table with its columns in ``pieces`` Arrow chunks (a season table is made of the
    files' tables: ~1,000 chunks)."""
    table = pa.Table.from_pandas(df, preserve_index=False).combine_chunks()
    bounds = [round(i * len(df) / pieces) for i in range(pieces + 1)]
    out = pa.Table.from_batches([b for a, z in itertools.pairwise(bounds) for b in table.slice(a, z - a).to_batches()])
    back = out.to_pandas()
    assert pa.Table.from_pandas(back, preserve_index=False)["text"].num_chunks == pieces
    return back


def test_xlsx_reruns_give_a_cold_runs_bytes(frames: dict[str, pd.DataFrame], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Reruns after changes of every kind, one after the other on one persistent memo, each give the
    bytes a cold run (empty memo) gives for the same tables, however the tables are chunked; a rerun
    renders only the blocks around what changed; openpyxl reads the cells the memo-less writer
    writes."""
    base = season_table(frames)
    assert len(base) >= xlsx.MEMO_MIN_ROWS
    states: list[pd.DataFrame] = [base]
    t = base.copy()  # a text edited in place, same byte length (only the text's CRC tells)
    row = len(t) // 3
    old = t.loc[row, "text"]
    t.loc[row, "text"] = old[:-1] + ("甲" if old[-1] != "甲" else "乙")
    assert len(t.loc[row, "text"].encode()) == len(old.encode())
    states.append(t)
    t = pd.concat([t.iloc[:500], t.iloc[[9]], t.iloc[500:4000], t.iloc[4001:]], ignore_index=True)  # in, out
    states.append(t)
    t = t.copy()  # a group's count changes on all its rows (n_members), a text goes missing
    t.loc[t["cluster_id"] == "gap-007", "n_members"] += 1
    t.loc[77, "text"] = None
    states.append(t)
    states.append(base)  # back where it started

    memo = FolderMemo(tmp_path / "memo")
    made = rendered_rows(monkeypatch)
    for i, df in enumerate(states):
        made.clear()
        for name, table in (("plain", chunked(df, 1)), ("few", chunked(df, 3)), ("many", chunked(df, 40))):
            xlsx.write_xlsx({"problems": table}, tmp_path / f"{i}-{name}.xlsx", memo=memo)
        rerendered = sum(made)
        xlsx.write_xlsx({"problems": df}, tmp_path / f"{i}-cold.xlsx", memo={})  # (as concatenated)
        cold = (tmp_path / f"{i}-cold.xlsx").read_bytes()
        for name in ("plain", "few", "many"):
            assert (tmp_path / f"{i}-{name}.xlsx").read_bytes() == cold, (i, name)
        if 0 < i < len(states) - 1:
            assert 0 < rerendered <= len(df) // 4, i  # the blocks around the change, not the table
    assert rerendered == 0  # back to the first state: every block was in the memo

    xlsx.write_xlsx({"problems": states[3]}, tmp_path / "whole.xlsx")
    got = pd.read_excel(tmp_path / "3-plain.xlsx", sheet_name="problems")
    assert got.equals(pd.read_excel(tmp_path / "whole.xlsx", sheet_name="problems"))
    assert got["n_members"].tolist() == states[3]["n_members"].tolist()
    assert pd.isna(got.loc[77, "text"]) and got.loc[row + 1, "text"] == states[3].loc[row + 1, "text"]


def test_xlsx_memo_losses_cost_time_not_bytes(frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    """A memo missing some of its entries, or holding unreadable ones, still gives a cold run's bytes."""
    df = season_table(frames, copies=20)
    changed = df.drop(index=range(100, 140)).reset_index(drop=True)
    assert len(changed) >= xlsx.MEMO_MIN_ROWS
    xlsx.write_xlsx({"problems": changed}, tmp_path / "cold.xlsx", memo={})
    cold = (tmp_path / "cold.xlsx").read_bytes()
    for lost in ("+groups", "+new", ""):
        memo: dict[str, object] = {}
        xlsx.write_xlsx({"problems": df}, tmp_path / "a.xlsx", memo=memo)
        xlsx.write_xlsx({"problems": changed}, tmp_path / "b.xlsx", memo=memo)
        (key,) = [k for k in memo if k.startswith("xlsx-blocks") and "+" not in k]
        memo[key + lost] = "damaged"
        xlsx.write_xlsx({"problems": changed}, tmp_path / "c.xlsx", memo=memo)
        assert (tmp_path / "c.xlsx").read_bytes() == cold, lost
        del memo[key + lost]
        xlsx.write_xlsx({"problems": changed}, tmp_path / "d.xlsx", memo=memo)
        assert (tmp_path / "d.xlsx").read_bytes() == cold, lost


def test_text_columns_keyed_alike_across_chunks(frames: dict[str, pd.DataFrame]) -> None:
    """The block keys read a text column's bytes where Arrow holds them (one buffer per chunk):
    a range's CRC over chunk edges, each row's length and first bytes are those of the joined
    column, with missing values as empty ones."""
    texts = frames["sentences"]["text"].tolist() * 3
    texts[5:9] = ["a", "", "长", "abcdefgh"]
    ids = frames["sentences"]["doc_id"].tolist() * 3  # (short values only: joined when in many chunks)
    rnd = random.Random(5)
    work = xlsx._Scratch()
    for values in (texts, [None if i % 17 == 0 else t for i, t in enumerate(texts)], ids):
        joined = pa.array(values, pa.large_string())
        raw = [(v or "").encode() for v in values]
        a = np.array(sorted(rnd.sample(range(len(values) - 1), 40)))
        b = np.array([rnd.randrange(x + 1, len(values) + 1) for x in a])
        for pieces in (1, 3, 40):
            bounds = [round(i * len(values) / pieces) for i in range(pieces + 1)]
            arr = pa.chunked_array([joined.slice(x, y - x) for x, y in itertools.pairwise(bounds)])
            lengths = np.empty(len(values), dtype=np.int64)
            text = xlsx._TextColumn.of(arr, lengths)
            assert lengths.tolist() == [len(r) for r in raw], pieces
            # (a missing value's bytes are none: the digest of a range is that of its values' bytes)
            assert text.digests(a, b) == [hashlib.sha1(b"".join(raw[x:y])).digest()
                                          for x, y in zip(a, b, strict=True)], pieces
            short = np.flatnonzero(lengths <= xlsx.SHORT_TEXT)
            heads = text.heads(short, lengths[short], work)
            assert heads.tolist() == [int.from_bytes(raw[i][:8].ljust(8, b"\0"), "little") for i in short], pieces


# ------------------------------------------------------------------------------------------ QDPX# ------------------------------------------------------------------------------------------ QDPX

def test_qdpx_from_parts_is_stable_and_independent_of_the_season(frames: dict[str, pd.DataFrame],
                                                                  tmp_path: Path) -> None:
    parts = run_parts(frames)
    meta = {"season": "分片"}
    qdpx.write_qdpx(frames, meta, tmp_path / "a.qdpx", parts)
    qdpx.write_qdpx(frames, meta, tmp_path / "b.qdpx")  # old callers: built from the frames
    assert (tmp_path / "a.qdpx").read_bytes() == (tmp_path / "b.qdpx").read_bytes()
    # a file's part is the same whatever else is in the season
    docs = doc_tables(frames)
    alone = qdpx.document_part(docs[-1])
    assert alone == parts[-1]["qdpx"]
    with zipfile.ZipFile(tmp_path / "a.qdpx") as z:
        assert z.testzip() is None
        root = etree.fromstring(z.read("project.qde"))
        texts = {n: z.read(n).decode() for n in z.namelist() if n.startswith("sources/")}
    guids = [e.get("guid") for e in root.iter() if e.get("guid")]
    assert len(guids) == len(set(guids))
    refs = {e.get("targetGUID") for e in root.iter(f"{QDA}CodeRef")} | {
        e.get("targetGUID") for e in root.iter(f"{QDA}SourceRef")}
    assert refs <= set(guids)
    sources = root.findall(f"{QDA}Sources/{QDA}TextSource")
    assert len(sources) == len(texts) == frames["sentences"]["doc_id"].nunique()
    for src in sources:
        text = texts["sources/" + src.get("plainTextPath").removeprefix("internal://")]
        for sel in src.findall(f"{QDA}PlainTextSelection"):
            a, b = int(sel.get("startPosition")), int(sel.get("endPosition"))
            assert 0 <= a < b <= len(text)
    themes = {c.get("name") for c in root.iter(f"{QDA}Code")}
    used = {t.strip() for t in frames["sentences"]["theme"] if t and t.strip()}
    assert used <= themes
    assert not re.search(rb"creationDateTime", etree.tostring(root))  # no clock in the bytes
