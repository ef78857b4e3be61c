"""Issue 3: bad input gets a reason, never a crash; nothing outside the inputs is read.

A hostile season folder (corrupt, encrypted, empty, mislabelled, XXE, ZIP bomb, traversal, deep
nesting, symlinks out, a FIFO, a 60 MB text, odd file names) goes through the real `huibian run`;
the isolation of parsers (time, memory, crash) is exercised with real misbehaving functions.
"""

from __future__ import annotations

import ctypes
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from ingest_fixtures import make_docx, make_pdf, report_paragraphs

from pipeline.ingest import IngestError, ingest_all
from pipeline.ingest.isolate import run_isolated

GOOD = "一、基本情况\n今年我们完成了各项工作任务，群众满意度明显提高。\n"
SECRET = "TOP-SECRET-OUTSIDE-THE-INPUTS"


def _xxe_docx(src: Path, dest: Path, secret_file: Path) -> None:
    """A real DOCX whose document.xml declares an external entity pointing at a local file."""
    with zipfile.ZipFile(src) as z:
        parts = {i.filename: z.read(i.filename) for i in z.infolist()}
    xml = parts["word/document.xml"].decode("utf-8")
    body = xml.split("?>", 1)[1]
    body = body.replace("<w:t>", "<w:t>&xxe;", 1)
    parts["word/document.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE w [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>'
        + body).encode("utf-8")
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("hostile")
    outside = base / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(f"{SECRET}。这是输入之外的文件。", encoding="utf-8")
    d = base / "in"
    d.mkdir()
    (d / "good.txt").write_bytes(GOOD.encode("gbk"))
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (d / "-leading dash.txt").write_bytes(GOOD.encode("utf-8"))
    (d / "new\nline.txt").write_bytes(GOOD.encode("utf-8"))
    (d / "notes.xyz").write_text("unknown", encoding="utf-8")
    with (d / "huge.txt").open("wb") as fh:  # 60 MB of text
        fh.write(("今年我们完成了各项工作任务。" * 1000).encode("utf-8") * 1500)
    pdf = make_pdf(report_paragraphs("青海省", 30), base / "ok.pdf")
    data = pdf.read_bytes()
    (d / "truncated.pdf").write_bytes(data[: len(data) // 3])
    (d / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(4000))
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(d / "encrypted.pdf"), encrypt="secret")
    c.drawString(100, 700, "confidential")
    c.save()
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (40, 40), "white").save(png, "PNG")
    (d / "picture.docx").write_bytes(png.getvalue())
    docx = make_docx(report_paragraphs("河北省", 20), base / "ok.docx")
    _xxe_docx(docx, d / "xxe.docx", secret)
    with zipfile.ZipFile(d / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.txt", b"0" * (40 * 1024 * 1024))
    with zipfile.ZipFile(d / "traversal.zip", "w") as z:
        z.writestr("../../escaped.txt", GOOD.encode("utf-8"))
        z.writestr("Xetc/absolute.txt", GOOD.encode("utf-8"))  # zipfile strips a leading '/'…
        z.writestr("inside.txt", GOOD.encode("utf-8"))
        link = zipfile.ZipInfo("link.txt")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, str(secret))
    raw = (d / "traversal.zip").read_bytes()  # …so put it back as a hostile tool would
    (d / "traversal.zip").write_bytes(raw.replace(b"Xetc/absolute", b"/etc/absolute"))
    blob, name = GOOD.encode("utf-8"), "deep.txt"
    for i in range(6):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(name, blob)
        blob, name = buf.getvalue(), f"level{i}.zip"
    (d / "nested.zip").write_bytes(blob)
    (d / "escape.txt").symlink_to(secret)
    os.mkfifo(d / "pipe.txt")
    return d, secret


def test_hostile_season_runs_and_accounts_for_every_file(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    inputs, _ = hostile
    out = tmp_path / "out"
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(inputs), "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - t0 < 240
    docs = pd.read_csv(out / "documents.csv", keep_default_na=False)
    for name in os.listdir(inputs):  # every input file has at least one row with a status
        rows = docs[docs["source"].str.startswith(str(inputs / name))]
        assert len(rows) >= 1, name
        assert set(rows["status"]) <= {"ok", "rejected"}
        for _, r in rows[rows["status"] == "rejected"].iterrows():
            assert len(r["reason"]) > 8, (r["source"], r["reason"])
    by = docs.set_index("source")
    for name in ("good.txt", "-leading dash.txt", "new\nline.txt"):
        assert by.loc[str(inputs / name), "status"] == "ok", name
    assert by.loc[str(inputs / "traversal.zip/inside.txt"), "status"] == "ok"
    expect = {
        "empty.txt": "empty", "binary.txt": "binary", "notes.xyz": "unsupported", "huge.txt": "too large",
        "truncated.pdf": "PDF", "corrupt.pdf": "PDF", "encrypted.pdf": "encrypted", "picture.docx": "PNG",
        "xxe.docx": "DOCTYPE", "bomb.zip": "bomb", "escape.txt": "outside", "pipe.txt": "not a regular file",
        "traversal.zip/../../escaped.txt": "traversal", "traversal.zip//etc/absolute.txt": "absolute",
        "traversal.zip/link.txt": "symbolic link",
    }
    for name, word in expect.items():
        row = by.loc[f"{inputs}/{name}"]
        assert row["status"] == "rejected" and word.lower() in row["reason"].lower(), (name, row["reason"])
    nested = docs[docs["source"].str.startswith(str(inputs / "nested.zip"))]
    assert (nested["status"] == "rejected").all() and nested["reason"].str.contains("nested").all()
    # nothing from outside the inputs made it into any output
    sentences = pd.read_parquet(out / "sentences.parquet", columns=["text"])
    assert not sentences["text"].str.contains(SECRET).any()
    assert SECRET not in (out / "digest.html").read_text(encoding="utf-8")
    assert not (inputs.parent / "escaped.txt").exists() and not (inputs / "escaped.txt").exists()


def test_xxe_entity_is_never_resolved(hostile: tuple[Path, Path]) -> None:
    inputs, _ = hostile
    (doc,) = ingest_all(inputs / "xxe.docx")
    assert doc.status == "rejected" and not doc.blocks
    assert SECRET not in doc.reason


def _sleep_forever() -> None:
    while True:
        time.sleep(1)


def _eat_memory() -> int:
    hog = []
    for _ in range(100):
        hog.append(bytearray(50 * 1024 * 1024))
    return len(hog)


def _segfault() -> None:
    ctypes.string_at(0)


def test_isolation_turns_hang_oom_and_crash_into_reasons() -> None:
    t0 = time.monotonic()
    with pytest.raises(IngestError, match="longer than"):
        run_isolated(_sleep_forever, timeout=1.0)
    assert time.monotonic() - t0 < 5
    with pytest.raises(IngestError, match="memory"):
        run_isolated(_eat_memory, timeout=30, memory_mb=300)
    with pytest.raises(IngestError, match="crashed"):
        run_isolated(_segfault, timeout=30)
    assert run_isolated(sum, [1, 2, 3], timeout=30) == 6  # and a good call returns its value
