"""Issue 3: every format a season brings in is read back to its source text.

Each fixture is written by the library a unit would use (reportlab, python-docx, openpyxl,
zipfile, LibreOffice, str.encode) from a real bundled report; the extracted text is scored against
that report: character F1 ≥ 0.99 and sentence recall ≥ 0.97 (scans: ≥ 0.95 / ≥ 0.80).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ingest_fixtures import (
    char_f1,
    make_docx,
    make_html,
    make_pdf,
    report_paragraphs,
    sentence_recall,
)

from pipeline.ingest import discover, ingest_all, ingest_file
from pipeline.model import Document

TABLE = [["指标", "2025年", "增长"], ["地区生产总值", "4100亿元", "4.1%"], ["居民人均可支配收入", "3.2万元", "5.1%"]]


def body_texts(doc: Document) -> list[str]:
    return [b.text for b in doc.blocks if b.kind in ("para", "heading")]


def assert_faithful(doc: Document, paras: list[str], f1: float = 0.99, recall: float = 0.97) -> None:
    assert doc.status == "ok", doc.reason
    texts = body_texts(doc)
    score = char_f1("".join(texts), "".join(paras))
    rec = sentence_recall(texts, paras)
    assert score >= f1, f"character F1 {score:.4f} < {f1}"
    assert rec >= recall, f"sentence recall {rec:.4f} < {recall}"


# --- PDF ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report_pdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    paras = report_paragraphs("青海省")
    path = make_pdf(paras, tmp_path_factory.mktemp("pdf") / "青海.pdf", table=TABLE, folio_offset=4)
    return path, paras


def test_pdf_text_matches_source_and_keeps_pages(report_pdf: tuple[Path, list[str]]) -> None:
    path, paras = report_pdf
    doc = ingest_file(path)
    assert doc.format == "pdf"
    assert_faithful(doc, paras)
    pages = [b.phys_page for b in doc.blocks]
    assert pages[0] == 1 and max(p for p in pages if p) == int(doc.meta["pages"]) > 5
    assert pages == sorted(pages), "blocks leave the PDF in page order"


def test_pdf_running_heads_and_folios_are_furniture(report_pdf: tuple[Path, list[str]]) -> None:
    doc = ingest_file(report_pdf[0])
    furniture = [b for b in doc.blocks if b.kind == "furniture"]
    n_pages = int(doc.meta["pages"])
    # every page has the running head and a "— N —" folio, none of them left in the body
    assert sum(b.text == "政府工作报告" for b in furniture) == n_pages
    assert sum(b.text.startswith("—") for b in furniture) == n_pages
    assert not any(b.text.startswith("— ") and b.text.endswith(" —") for b in doc.blocks if b.kind == "para")
    # the printed folio (physical page + 4, as printed) is recorded on the page's blocks
    assert all(b.page == b.phys_page + 4 for b in doc.blocks)


def test_pdf_table_comes_out_as_a_table(report_pdf: tuple[Path, list[str]]) -> None:
    doc = ingest_file(report_pdf[0])
    tables = [b for b in doc.blocks if b.kind == "table"]
    assert len(tables) == 1
    assert tables[0].rows == TABLE
    # its cells are not also in the running text
    assert not any("居民人均可支配收入" in t and "3.2万元" in t for t in body_texts(doc))


def test_pdf_sentences_survive_the_pipeline(report_pdf: tuple[Path, list[str]]) -> None:
    """What is judged: the pipeline's sentences, with lines and page breaks re-joined."""
    from pipeline.normalize import normalize
    from pipeline.structure import structure

    path, paras = report_pdf
    doc = structure(normalize(ingest_file(path)))
    texts = [s.text for s in doc.sentences]
    assert sentence_recall(texts, paras) >= 0.97


def test_scanned_pdf_is_ocred(tmp_path: Path) -> None:
    """A PDF of page images (no text layer) goes through OCR; one small page keeps it quick."""
    pytest.importorskip("rapidocr_onnxruntime")
    import pypdfium2 as pdfium
    from reportlab.lib.pagesizes import A6

    paras = report_paragraphs("河北省")[16:17]
    text_pdf = make_pdf(paras, tmp_path / "text.pdf", running_head="", font_size=9)
    bitmap = pdfium.PdfDocument(str(text_pdf))[0].render(scale=200 / 72).to_pil()
    width, height = bitmap.size
    crop = bitmap.crop((0, 0, width, height // 3))
    scan = tmp_path / "scan.pdf"
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(scan), pagesize=(A6[1], A6[1] * crop.size[1] / crop.size[0]))
    c.drawImage(ImageReader(crop), 0, 0, width=A6[1], height=A6[1] * crop.size[1] / crop.size[0])
    c.setFont("Helvetica", 6)
    c.drawString(140, 3, "- 7 -")  # scanners stamp a page number as text: still a scan
    c.save()
    assert pdfium.PdfDocument(str(scan))[0].get_textpage().get_text_bounded().strip() == "- 7 -"
    doc = ingest_file(scan)
    assert doc.status == "ok", doc.reason
    assert doc.meta.get("ocr_pages") == "1"
    ref = pdfium.PdfDocument(str(text_pdf))[0].get_textpage().get_text_bounded(
        0, 842 * 2 / 3, 595, 842)
    got = "".join(body_texts(doc))
    assert char_f1(got, ref.replace("— 1 —", "")) >= 0.95
    assert all(b.phys_page == 1 for b in doc.blocks)


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_pdf_printed_from_word(report_docx: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Word-printed PDFs draw glyphs out of reading order (quote marks from a fallback font, no
    justification, numbers wrapped whole); lines are rebuilt from glyph boxes."""
    path, paras = report_docx
    subprocess.run(["soffice", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
                   check=True, capture_output=True, timeout=180)
    doc = ingest_file(tmp_path / "安徽.pdf")
    assert_faithful(doc, paras)
    assert [b.rows for b in doc.blocks if b.kind == "table"] == [TABLE]  # ruled table via pdfplumber
    # the DOCX header repeats on every page: a running head, not body text
    heads = [b for b in doc.blocks if b.kind == "furniture" and b.text == "安徽省人民政府文件"]
    assert len(heads) == int(doc.meta["pages"])
    assert not any("安徽省人民政府文件" in t for t in body_texts(doc))


def test_image_is_ocred(tmp_path: Path) -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    from PIL import Image, ImageDraw, ImageFont

    font_path = next((p for p in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                                  "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
                      if Path(p).exists()), None)
    if font_path is None:
        pytest.skip("no CJK font (fonts-noto-cjk) to draw the test image with")
    lines = ["今年我们完成了各项工作任务，", "群众满意度明显提高。"]
    img = Image.new("RGB", (900, 220), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(font_path, 48)
    for i, line in enumerate(lines):
        draw.text((40, 30 + i * 90), line, fill="black", font=font)
    path = tmp_path / "photo.png"
    img.save(path)
    doc = ingest_file(path)
    assert doc.status == "ok" and doc.format == "image", doc.reason
    assert char_f1("".join(body_texts(doc)), "".join(lines)) >= 0.95


# --- Word ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report_docx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    paras = report_paragraphs("安徽省")
    path = make_docx(paras, tmp_path_factory.mktemp("docx") / "安徽.docx", table=TABLE,
                     footnote="注：2025年数据为初步核算数。", header="安徽省人民政府文件", footer="第 1 页")
    return path, paras


def test_docx_text_styles_tables_footnotes(report_docx: tuple[Path, list[str]]) -> None:
    path, paras = report_docx
    doc = ingest_file(path)
    assert doc.format == "docx"
    assert_faithful(doc, paras)
    headings = [b for b in doc.blocks if b.kind == "heading"]
    assert headings[0].text == paras[0] and headings[0].level == 0
    assert [b.text for b in headings[1:]] == [p for p in paras[1:] if p.startswith(("一、", "二、", "三、"))
                                                and len(p) < 40]
    assert all(b.level == 1 for b in headings[1:])
    tables = [b for b in doc.blocks if b.kind == "table"]
    assert [t.rows for t in tables] == [TABLE]
    assert doc.blocks[-1].text == "注：2025年数据为初步核算数。"
    # header and footer stay out of the body
    assert not any("安徽省人民政府文件" in t or t == "第 1 页" for t in body_texts(doc))


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_legacy_doc_via_libreoffice(report_docx: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, paras = report_docx
    subprocess.run(["soffice", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    "--convert-to", "doc", "--outdir", str(tmp_path), str(path)],
                   check=True, capture_output=True, timeout=180)
    doc_file = tmp_path / "-odd name.doc"  # a leading dash must not reach soffice's command line
    (tmp_path / "安徽.doc").rename(doc_file)
    assert doc_file.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"
    doc = ingest_file(doc_file)
    assert doc.format == "doc"
    assert_faithful(doc, paras)
    assert any(b.kind == "heading" for b in doc.blocks)
    assert [b.rows for b in doc.blocks if b.kind == "table"] == [TABLE]


# --- HTML and text ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_html_main_text_without_site_furniture(tmp_path: Path, encoding: str) -> None:
    paras = report_paragraphs("福建省")
    path = tmp_path / "page.html"
    path.write_bytes(make_html(paras, encoding))
    doc = ingest_file(path)
    assert doc.format == "html"
    assert_faithful(doc, paras)
    text = "".join(body_texts(doc))
    for chrome in ("栏目3", "网站地图", "版权所有", "ICP备", "var _hmt", "广告"):
        assert chrome not in text
    assert any(b.kind == "heading" and b.text.startswith("一、") for b in doc.blocks)


def test_web_page_saved_as_doc_is_read_as_html(tmp_path: Path) -> None:
    """Office systems export HTML named .doc; it is read for what it is, with a warning."""
    paras = report_paragraphs("吉林省")
    path = tmp_path / "通知.doc"
    path.write_bytes(make_html(paras, "gbk"))
    doc = ingest_file(path)
    assert doc.format == "html" and any("web page" in w for w in doc.warnings)
    assert_faithful(doc, paras)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "gb2312", "gbk",
                                      "gb18030", "big5"])
def test_text_in_every_common_encoding(tmp_path: Path, encoding: str) -> None:
    import opencc

    paras = report_paragraphs("山东省")
    if encoding == "big5":  # Big5 files are traditional Chinese
        conv = opencc.OpenCC("s2t")
        paras = [conv.convert(p) for p in paras]
    if encoding == "gb2312":  # GB2312 lacks some characters: the file holds what it can
        paras = [p.encode("gb2312", "ignore").decode("gb2312") for p in paras]
    source = "\r\n".join(paras) if encoding == "gbk" else "\n".join(paras)
    path = tmp_path / "report.txt"
    path.write_bytes(source.encode(encoding, "ignore"))
    doc = ingest_file(path)
    assert_faithful(doc, [p.encode(encoding, "ignore").decode(encoding) for p in paras], f1=0.999)


def test_short_gbk_and_big5_are_not_confused(tmp_path: Path) -> None:
    """A few lines are too little for statistics; the common-character score decides."""
    simp = "一、基本情况\n今年我们完成了各项工作任务。"
    trad = "一、基本情況\n今年我們完成了各項工作任務。"
    (tmp_path / "gbk.txt").write_bytes(simp.encode("gbk"))
    (tmp_path / "big5.txt").write_bytes(trad.encode("big5"))
    assert "".join(body_texts(ingest_file(tmp_path / "gbk.txt"))) == simp.replace("\n", "")
    assert "".join(body_texts(ingest_file(tmp_path / "big5.txt"))) == trad.replace("\n", "")


def test_markdown_headings(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("# 工作总结\n\n## 一、主要成绩\n\n今年完成了任务。\n", encoding="utf-8")
    doc = ingest_file(path)
    assert doc.format == "md"
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        ("heading", 1, "工作总结"), ("heading", 2, "一、主要成绩"), ("para", None, "今年完成了任务。")]


# --- one report per row ---------------------------------------------------------------------------

def _reports() -> list[tuple[str, str, str, str]]:
    rows = []
    for name in ("吉林省", "河北省", "青海省"):
        paras = report_paragraphs(name)
        rows.append((name, paras[0], "2026-01-27", "\n".join(paras[1:40])))
    return rows


def test_xlsx_rows_become_documents(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "报送"
    ws.append(["序号", "单位", "标题", "报送日期", "正文"])
    for i, (unit, title, date, text) in enumerate(_reports(), start=1):
        ws.append([f"A{i:02d}", unit, title, date, text])
    path = tmp_path / "season.xlsx"
    wb.save(path)
    docs = ingest_all(path, str(path))
    assert [d.source for d in docs] == [f"{path}/A01", f"{path}/A02", f"{path}/A03"]
    assert len({d.doc_id for d in docs}) == 3
    for d, (unit, title, date, text) in zip(docs, _reports(), strict=True):
        assert d.status == "ok" and d.format == "xlsx"
        assert d.meta["unit"] == unit and d.meta["title"] == title and d.meta["date"] == date
        assert_faithful(d, text.splitlines(), f1=0.999, recall=1.0)


def test_csv_without_known_headers_uses_config(tmp_path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["org", "headline", "body"])
    for unit, title, _, text in _reports():
        w.writerow([unit, title, text])
    path = tmp_path / "season.csv"
    path.write_bytes(buf.getvalue().encode("gb18030"))
    cfg = {"table": {"text": "body", "unit": "org", "title": "headline"}}
    docs = ingest_all(path, "season.csv", config=cfg)
    assert [d.source for d in docs] == ["season.csv/row2", "season.csv/row3", "season.csv/row4"]
    assert [d.meta["unit"] for d in docs] == ["吉林省", "河北省", "青海省"]
    assert_faithful(docs[1], _reports()[1][3].splitlines(), f1=0.999, recall=1.0)
    # a column the config names but the file lacks is a clear rejection, not a crash
    bad = ingest_all(path, "season.csv", config={"table": {"text": "内容"}})
    assert len(bad) == 1 and bad[0].status == "rejected" and "'内容'" in bad[0].reason


# --- archives and discovery ---------------------------------------------------------------------

def test_zip_members_are_documents_recursively(report_docx: tuple[Path, list[str]], tmp_path: Path) -> None:
    docx_path, paras = report_docx
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("河北.txt", "\n".join(report_paragraphs("河北省")).encode("gbk"))
    path = tmp_path / "units.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(docx_path, "安徽/报告.docx")
        z.writestr("more/inner.zip", inner.getvalue())
        z.writestr("readme.xyz", b"?")
    docs = {d.source: d for d in ingest_all(path, "units.zip")}
    assert set(docs) == {"units.zip/安徽/报告.docx", "units.zip/more/inner.zip/河北.txt", "units.zip/readme.xyz"}
    assert_faithful(docs["units.zip/安徽/报告.docx"], paras)
    assert_faithful(docs["units.zip/more/inner.zip/河北.txt"], report_paragraphs("河北省"))
    assert docs["units.zip/readme.xyz"].status == "rejected"


def test_zip_with_gbk_member_names(tmp_path: Path) -> None:
    """Chinese Windows zips store names in GBK without the UTF-8 flag."""
    path = tmp_path / "gbk.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("abcdefgh.txt", "今年完成了任务。".encode())
    # zipfile only writes ASCII or flagged UTF-8 names: put the GBK bytes in as such tools do
    raw = path.read_bytes().replace(b"abcdefgh", "工作总结".encode("gbk"))
    path.write_bytes(raw)
    (doc,) = ingest_all(path, "gbk.zip")
    assert doc.source == "gbk.zip/工作总结.txt" and doc.status == "ok"


def test_discover_accounts_for_hidden_files_and_symlinked_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "r.txt").write_text("今年完成了任务。", encoding="utf-8")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref", encoding="utf-8")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    found = {Path(s).name for _, s in discover([tmp_path])}
    assert found == {"r.txt", ".DS_Store", "link"}
    docs = {Path(s).name: ingest_all(p, s, root=tmp_path)[0] for p, s in discover([tmp_path])}
    assert docs["r.txt"].status == "ok"
    assert docs[".DS_Store"].status == "rejected" and "hidden" in docs[".DS_Store"].reason
    assert docs["link"].status == "rejected" and "folder" in docs["link"].reason


def test_run_reads_a_season_of_mixed_formats_with_config(report_docx: tuple[Path, list[str]],
                                                          tmp_path: Path) -> None:
    """`huibian run --config`: a CSV of reports (columns named in the config) and a ZIP of Word
    files each give one row per report in documents.csv, and their sentences reach the output."""
    import pandas as pd

    inputs = tmp_path / "in"
    inputs.mkdir()
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["org", "body"])
    for unit, _, _, text in _reports()[:2]:
        w.writerow([unit, text])
    (inputs / "rows.csv").write_text(buf.getvalue(), encoding="utf-8")
    with zipfile.ZipFile(inputs / "units.zip", "w") as z:
        z.write(report_docx[0], "安徽.docx")
    cfg = tmp_path / "huibian.toml"
    cfg.write_text('[ingest.table]\ntext = "body"\nunit = "org"\n', encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(inputs), "--out", str(tmp_path / "out"),
                          "--config", str(cfg), "--no-cache"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    docs = pd.read_csv(tmp_path / "out" / "documents.csv", keep_default_na=False)
    assert sorted(docs["source"]) == sorted([f"{inputs}/rows.csv/row2", f"{inputs}/rows.csv/row3",
                                             f"{inputs}/units.zip/安徽.docx"])
    assert (docs["status"] == "ok").all(), docs[["source", "reason"]]
    articles = pd.read_parquet(tmp_path / "out" / "articles.parquet", columns=["unit"])
    assert {"吉林省", "河北省"} <= set(articles["unit"])
    sentences = pd.read_parquet(tmp_path / "out" / "sentences.parquet", columns=["doc_id"])
    assert set(sentences["doc_id"]) == set(docs["doc_id"])
