"""A Parquet file assembled from row groups encoded one by one and kept between runs.

sentences.parquet holds every sentence of the season (~450,000 rows at 1,000 reports); encoding it
again after one file changed was a fifth of a rerun's work. Its row groups are therefore cut at file
boundaries chosen by the files' names (so a changed file moves no cut), each encoded alone as a
one-row-group Parquet file that the analysis memo keeps under the identities of its files, and the
output is those row groups' bytes laid end to end behind one footer: the footers' row-group
metadata with their offsets moved to where the bytes now lie (read and written with fastparquet's
Thrift codec). A cold run goes through the same steps, so a rerun's file is byte-identical to it.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

MAGIC = b"PAR1"
_LENGTH = struct.Struct("<i")

#: a row group ends after a file whose name hashes to 0 modulo this (~32 files, ~15,000 sentences
#: a group at 1,000 reports), or after MAX_FILES files at most
GROUP_FILES = 32
MAX_FILES = 4 * GROUP_FILES


class NoPieces(ValueError):
    """:func:`splice` was given no row groups (a file needs at least its schema: write it whole)."""


def groups(names: Sequence[str], group_files: int | None = None,
           max_files: int | None = None) -> list[range]:
    """Consecutive runs of files, cut after a file whose name says so: a file's content changing
    moves no cut, and a file added or removed moves only its neighbours'."""
    group_files = group_files or GROUP_FILES
    max_files = max_files or MAX_FILES
    out: list[range] = []
    start = 0
    for i, name in enumerate(names):
        h = int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogateescape"),
                                           digest_size=8).digest(), "little")
        if h % group_files == 0 or i + 1 - start >= max_files:
            out.append(range(start, i + 1))
            start = i + 1
    if start < len(names):
        out.append(range(start, len(names)))
    return out


def encode(table: pa.Table, **options: Any) -> bytes:
    """``table`` as a Parquet file of one row group (``options`` go to ``pq.write_table``)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=max(table.num_rows, 1), write_page_index=False,
                   **options)
    return sink.getvalue().to_pybytes()


def _footer(data: bytes) -> tuple[Any, int]:
    """A Parquet file's metadata (fastparquet's Thrift object) and where its footer starts."""
    with warnings.catch_warnings():  # (its import warns about pandas options it reads)
        warnings.simplefilter("ignore")
        from fastparquet.cencoding import from_buffer

    if data[:4] != MAGIC or data[-4:] != MAGIC:
        raise ValueError("not a Parquet file")
    (n,) = _LENGTH.unpack(data[-8:-4])
    start = len(data) - 8 - n
    return from_buffer(data[start:-8], "FileMetaData"), start


def _move(row_group: Any, shift: int) -> None:
    """A row group's byte offsets moved by ``shift`` (its bytes now lie that much further on)."""
    if row_group.file_offset is not None:
        row_group.file_offset += shift
    for chunk in row_group.columns:
        if chunk.offset_index_offset is not None or chunk.column_index_offset is not None:
            raise ValueError("row groups with a page index cannot be moved")
        if chunk.file_offset:
            chunk.file_offset += shift
        meta = chunk.meta_data
        meta.data_page_offset += shift
        for name in ("dictionary_page_offset", "index_page_offset", "bloom_filter_offset"):
            if getattr(meta, name) is not None:
                setattr(meta, name, getattr(meta, name) + shift)


def splice(pieces: Iterable[bytes], sink: BinaryIO) -> int:
    """Write the row groups of ``pieces`` (Parquet files of one schema, e.g. from :func:`encode`),
    in order, as one Parquet file; returns its number of rows. The first piece's metadata (schema,
    key/value metadata, writer) heads the file."""
    head: Any = None
    row_groups: list[Any] = []
    written = 0
    for data in pieces:
        meta, end = _footer(data)
        if head is None:
            head = meta
            sink.write(MAGIC)
            written = len(MAGIC)
        shift = written - len(MAGIC)  # the piece's row groups start right after its own magic
        sink.write(memoryview(data)[len(MAGIC):end])
        written += end - len(MAGIC)
        for rg in meta.row_groups:
            _move(rg, shift)
            row_groups.append(rg)
    if head is None:
        raise NoPieces("no row groups to splice")
    head.row_groups = row_groups
    head.num_rows = sum(rg.num_rows for rg in row_groups)
    footer = bytes(head.to_bytes())
    sink.write(footer + _LENGTH.pack(len(footer)) + MAGIC)
    return int(head.num_rows)


def cached_pieces(groups: Iterable[tuple[str | None, Callable[[], pa.Table]]],
                  memo: MutableMapping[str, Any] | None, **options: Any) -> Iterator[bytes]:
    """Encoded row groups, one per (key, make) of ``groups``: from the memo when the key is known
    and held there, else encoded from ``make()`` (and kept under the key)."""
    for key, make in groups:
        if key is not None and memo is not None:
            try:
                held = memo.get(key)
            except Exception:  # noqa: BLE001 - an unreadable memo entry is a miss
                held = None
            if isinstance(held, bytes):
                if held:
                    yield held
                continue
        table = make()
        data = encode(table, **options) if table.num_rows else b""  # (no row group of no rows)
        if key is not None and memo is not None:
            memo[key] = data
        if data:
            yield data
