"""The ZIP writer behind tables.xlsx and corpus.qdpx past the classic ZIP limits: more than 65,535
entries (a season of that many sources in corpus.qdpx) and entries beyond 4 GiB into the archive
(a big season's tables.xlsx). Read back with Python's own ``zipfile``, which follows ZIP64."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from pipeline.digest.zipparts import ZIP64_LIMIT, ZipWriter, deflate


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
