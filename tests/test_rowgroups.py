"""sentences.parquet spliced from row groups kept between runs (issue 8): the same file as one
written whole, byte-identical whether its row groups were encoded now or taken from the memo."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

from pipeline import rowgroups
from pipeline.analyze import analyze
from pipeline.analyze.text import sentence_word_codes
from pipeline.run import RunConfig, load_frames, run


def _sample_sentences(tmp_path: Path) -> pa.Table:
    out = tmp_path / "sample-run"
    run(RunConfig(inputs=[str(SAMPLE)], out=out, jobs=1, use_cache=False))
    return pq.read_table(out / "sentences.parquet")


def test_spliced_row_groups_read_back_as_the_table_with_its_pandas_types(tmp_path: Path) -> None:
    table = _sample_sentences(tmp_path)
    n = table.num_rows
    cuts = [0, n // 5, n // 5 + 1, n // 2, n]
    pieces = [rowgroups.encode(table.slice(a, b - a), compression="lz4")
              for a, b in zip(cuts, cuts[1:], strict=False)]
    sink = io.BytesIO()
    assert rowgroups.splice(pieces, sink) == n
    data = sink.getvalue()
    got = pq.ParquetFile(io.BytesIO(data))
    assert got.metadata.num_rows == n and got.metadata.num_row_groups == 4
    assert [got.metadata.row_group(i).num_rows for i in range(4)] == [b - a for a, b in
                                                                      zip(cuts, cuts[1:], strict=False)]
    # every row group is found where the footer says it is, each read on its own
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        assert got.read_row_group(i).equals(table.slice(a, b - a))
    assert got.read().equals(table)
    # pandas reads it with the dtypes a whole-file write gives (the schema's metadata is kept)
    whole = io.BytesIO()
    pq.write_table(table, whole)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(data)),
                                  pd.read_parquet(io.BytesIO(whole.getvalue())))
    with pytest.raises(rowgroups.NoPieces):
        rowgroups.splice([], io.BytesIO())
    with pytest.raises(ValueError):
        rowgroups.splice([b"not parquet at all"], io.BytesIO())


def test_row_group_cuts_follow_file_names_not_contents() -> None:
    names = [f"season/{i:04d}_report.txt" for i in range(1000)]
    spans = rowgroups.groups(names)
    assert [i for s in spans for i in s] == list(range(1000))  # every file once, in order
    assert 15 <= len(spans) <= 60  # ~32 files a group
    assert max(len(s) for s in spans) <= rowgroups.MAX_FILES
    # a file dropped out of the season moves no cut but its own group's
    fewer = rowgroups.groups(names[:500] + names[501:])
    before = [s for s in spans if s.stop <= 500]
    after = [range(s.start - 1, s.stop - 1) for s in spans if s.start > 500]
    assert fewer[:len(before)] == before and fewer[len(fewer) - len(after):] == after
    assert rowgroups.groups(names, group_files=1_000_000, max_files=10)[0] == range(10)


def test_rerun_takes_unchanged_row_groups_from_the_memo_and_gives_a_clean_runs_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rowgroups, "GROUP_FILES", 1)  # a row group per file
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in sorted(SAMPLE.rglob("*.txt"))[:6]:
        shutil.copyfile(f, inputs / f.name)
    cached = tmp_path / "cached"
    run(RunConfig(inputs=[str(inputs)], out=cached, jobs=1))
    groups_written = pq.ParquetFile(cached / "sentences.parquet").metadata.num_row_groups
    assert groups_written == 6

    changed = sorted(inputs.glob("*.txt"))[-1]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n全年新增就业岗位一万二千个。\n",
                       encoding="utf-8")
    encoded: list[int] = []  # row groups encoded (the real encoder, counted)
    encode = rowgroups.encode
    monkeypatch.setattr(rowgroups, "encode",
                        lambda table, **kw: encoded.append(table.num_rows) or encode(table, **kw))
    run(RunConfig(inputs=[str(inputs)], out=cached, jobs=1))
    assert len(encoded) == 1  # the changed file's row group; the others' bytes from the memo
    clean = tmp_path / "clean"
    run(RunConfig(inputs=[str(inputs)], out=clean, jobs=1, use_cache=False))
    assert (cached / "sentences.parquet").read_bytes() == (clean / "sentences.parquet").read_bytes()
    assert "全年新增就业岗位一万二千个。" in set(pd.read_parquet(cached / "sentences.parquet")["text"])
    # the Python API analyses a run's folder again (its columns may come in one chunk per row group)
    frames = load_frames(cached)
    pd.testing.assert_frame_equal(analyze(frames)["matrix"], frames["matrix"], check_dtype=False)
    tokens = pa.array(frames["sentences"]["tokens"]).combine_chunks()
    half = len(tokens) // 2
    chunked = pd.DataFrame({"tokens": pd.arrays.ArrowStringArray(
        pa.chunked_array([tokens.slice(0, half), tokens.slice(half)]))})
    whole = pd.DataFrame({"tokens": pd.arrays.ArrowStringArray(tokens)})
    got, expected = sentence_word_codes(chunked), sentence_word_codes(whole)
    assert got.n_rows == len(tokens) and got.lists() == expected.lists()
