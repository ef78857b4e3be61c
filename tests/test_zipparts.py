"""The ZIP writer behind tables.xlsx and corpus.qdpx past the classic ZIP limits: more than 65,535
entries (a season of that many sources in corpus.qdpx) and entries beyond 4 GiB into the archive
(a big season's tables.xlsx). Read back with Python's own ``zipfile``, which follows ZIP64."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from pathlib import Path

from pipeline.digest.zipparts import (
    WRITE_BATCH,
    ZIP64_LIMIT,
    ZLIB_SHIFT_MAX,
    Deflated,
    ZipWriter,
    crc32_combine,
    crc32_concat_many,
    crc32_shift,
    deflate,
)


def test_more_than_65535_entries_get_a_zip64_directory() -> None:
    buf = io.BytesIO()
    z = ZipWriter(buf)
    n = 70_000
    for i in range(n):
        z.write(f"Sources/{i:05d}.txt", f"第{i}号报告".encode())
    z.write_pieces("project.qde", [deflate(b"<Project>" * 50), deflate(b"</Project>")])
    z.close()
    data = buf.getvalue()
    assert b"PK\x06\x06" in data[-200:]  # the ZIP64 end of central directory is there
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert len(names) == n + 1 and zf.testzip() is None
        assert zf.read("Sources/69999.txt").decode() == "第69999号报告"
        assert zf.read("project.qde") == b"<Project>" * 50 + b"</Project>"


def test_entries_past_4_gib_get_zip64_offsets(tmp_path: Path) -> None:
    # the archive starts 4.1 GiB into a sparse file (the hole costs no disk): every entry's
    # offset needs ZIP64; readers find entries through the central directory, not from the start
    path = tmp_path / "big.zip"
    with path.open("wb") as fh:
        fh.seek(ZIP64_LIMIT + 100_000_000)
        z = ZipWriter(fh)
        z.write("xl/workbook.xml", b"<workbook/>" * 20)
        z.write_pieces("xl/worksheets/sheet1.xml", [deflate("行".encode() * 10_000), deflate(b"end")])
        z.close()
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["xl/workbook.xml", "xl/worksheets/sheet1.xml"]
        assert all(i.header_offset > ZIP64_LIMIT for i in infos)
        assert zf.testzip() is None
        assert zf.read("xl/worksheets/sheet1.xml") == "行".encode() * 10_000 + b"end"


def test_crc_shifts_from_zlib_and_from_squaring_agree() -> None:
    """crc32_shift takes zlib's CRC of zero bytes up to ZLIB_SHIFT_MAX and squares beyond: both
    combine CRCs as zlib computes the joined data's, at the edges of either way."""
    head = "报告".encode() * 100
    for n in (0, 1, 7, 65_535, 65_536, 65_537, ZLIB_SHIFT_MAX, ZLIB_SHIFT_MAX + 1, 3 * ZLIB_SHIFT_MAX + 5):
        tail = bytes(n) if n % 2 else b"\x07" * n
        assert crc32_combine(zlib.crc32(head), zlib.crc32(tail), n) == zlib.crc32(head + tail), n


def test_crc_of_many_short_sequences_at_once() -> None:
    rnd = random.Random(12)
    seqs = [[rnd.randbytes(rnd.randrange(1, 300)) for _ in range(k)] for k in (1, 2, 3, 5, 8, 13, 32, 33, 1)]
    got = crc32_concat_many([([zlib.crc32(p) for p in ps], [crc32_shift(len(p)) for p in ps]) for ps in seqs])
    assert got == [(zlib.crc32(b"".join(ps)), crc32_shift(sum(map(len, ps)))) for ps in seqs]
    assert crc32_concat_many([]) == []


def test_pieces_written_in_batches_to_a_file_as_to_memory(tmp_path: Path) -> None:
    """An entry of more pieces than one writev takes (some of them views into a bigger buffer) is
    the same archive written to an unbuffered file (writev batches) as to memory (piece by piece)."""
    rnd = random.Random(3)
    raw = [f"行{i},".encode() * rnd.randrange(1, 40) for i in range(WRITE_BATCH * 2 + 17)]
    big = deflate(b"".join(raw[:50]))
    pieces = [deflate(r) for r in raw] + [Deflated(memoryview(b"xx" + big.data + b"yy")[2:-2], big.crc, big.size)]
    buf = io.BytesIO()
    for fh in (buf, open(tmp_path / "t.zip", "wb", buffering=0)):  # noqa: SIM115 - closed below
        z = ZipWriter(fh)
        z.write("a.xml", b"<a/>" * 30)
        z.write_pieces("b.xml", pieces)
        z.close()
        if fh is not buf:
            fh.close()
    assert (tmp_path / "t.zip").read_bytes() == buf.getvalue()
    with zipfile.ZipFile(tmp_path / "t.zip") as zf:
        assert zf.testzip() is None
        assert zf.read("b.xml") == b"".join(raw) + b"".join(raw[:50])
