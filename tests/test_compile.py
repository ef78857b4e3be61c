"""Issue 7: `huibian compile` makes an anthology volume whose 目录 page numbers are where the
articles start in the delivered PDF (rendered by LibreOffice, read back with pypdfium2)."""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docx
import pandas as pd
import pypdfium2 as pdfium
import pytest
from test_digest import make_inputs

from pipeline.cli import main
from pipeline.run import RunConfig, run

HAS_SOFFICE = shutil.which("soffice") is not None or shutil.which("libreoffice") is not None


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def huibian(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """The CLI in-process (same parser and handler as the console script, without a new interpreter)."""

    def call(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return call


def norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("compile")
    run(RunConfig(inputs=[str(make_inputs(base / "in"))], out=base / "out"))
    return base / "out"


@pytest.mark.skipif(not HAS_SOFFICE, reason="LibreOffice (soffice) not installed: no PDF to check pages in")
def test_volume_toc_pages_match_the_pdf(run_dir: Path, tmp_path: Path, huibian: Callable[..., Result]) -> None:
    arts = pd.read_parquet(run_dir / "articles.parquet")
    arts = arts[(arts["kind"] != "front") & (arts["n_sentences"] > 0)]
    assert len(arts) >= 3
    # the order file: the last article by id, then the others by title (reversed), plus a stray line
    rev = arts.iloc[::-1]
    order = tmp_path / "order.txt"
    order.write_text("\n".join([rev.iloc[0]["article_id"], *rev["title"].iloc[1:], "没有这篇文章"]) + "\n",
                     encoding="utf-8")
    out = tmp_path / "vol" / "volume.docx"
    res = huibian("compile", str(run_dir), "--out", str(out), "--order", str(order), "--title", "测试材料汇编")
    assert res.returncode == 0, res.stderr
    assert "没有这篇文章" in res.stderr  # the unmatched order line is reported
    pdf_path = out.with_suffix(".pdf")
    assert out.exists() and pdf_path.exists()

    d = docx.Document(str(out))
    entries = [p.text for p in d.paragraphs if p.style.name == "汇编目录"]
    titles = [e.rsplit("\t", 1)[0] for e in entries]
    assert titles == rev["title"].tolist()
    pages = [int(e.rsplit("\t", 1)[1]) for e in entries]
    headings = [p.text for p in d.paragraphs if p.style.name == "Heading 1"]
    assert headings[:2] == ["序", "目录"] and headings[2:] == titles

    pdf = pdfium.PdfDocument(str(pdf_path))
    texts = [norm(pdf[i].get_textpage().get_text_range()) for i in range(len(pdf))]
    assert "测试材料汇编" in texts[0]
    assert texts[1].startswith("序")
    toc = next(i for i, t in enumerate(texts) if t.startswith("目录"))
    assert pages == sorted(pages) and pages[0] > toc + 1
    units = dict(zip(arts["title"], arts["unit"], strict=True))
    for title, page in zip(titles, pages, strict=True):
        t = norm(title)
        starts = [i + 1 for i in range(toc + 1, len(texts)) if texts[i].find(t) in range(0, 12)]
        assert starts and starts[0] == page, (title, page, starts)  # first page that opens with it
        assert f"—{page}—" in texts[page - 1]  # and the folio printed on that page says so
        if units[title]:
            assert norm(units[title]) in texts[page - 1][: len(t) + 60]  # unit byline under the title
    assert len(pdf) >= pages[-1]


def test_without_libreoffice_the_docx_is_still_written(run_dir: Path, tmp_path: Path,
                                                      huibian: Callable[..., Result],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "volume.docx"
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it: soffice cannot be found
    res = huibian("compile", str(run_dir), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "LibreOffice" in res.stderr
    assert out.exists() and not out.with_suffix(".pdf").exists()
    d = docx.Document(str(out))
    assert len([p for p in d.paragraphs if p.style.name == "汇编目录"]) >= 3


def test_bad_folder_and_order_file_are_one_line_errors(run_dir: Path, tmp_path: Path,
                                                      huibian: Callable[..., Result]) -> None:
    res = huibian("compile", str(tmp_path / "missing"), "--out", str(tmp_path / "v.docx"))
    assert res.returncode == 2 and "not a folder" in res.stderr
    res = huibian("compile", str(tmp_path), "--out", str(tmp_path / "v.docx"))
    assert res.returncode == 2 and "huibian run" in res.stderr
    res = huibian("compile", str(run_dir), "--out", str(tmp_path / "v.docx"), "--order",
                  str(tmp_path / "nope.txt"))
    assert res.returncode == 2 and "order file not found" in res.stderr
    assert "Traceback" not in res.stderr
