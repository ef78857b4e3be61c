"""Real files for the ingest tests and benchmark, written by the libraries a unit would use.

Every generator takes the paragraphs of a real report (a bundled gov2026 report or a seed) so the
extracted text can be scored against the source: character F1 and sentence recall.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOV = REPO / "corpus" / "sample" / "gov2026"

_SENT_END = re.compile(r"(?<=[。！？!?])")


def report_paragraphs(name: str = "青海省", limit: int | None = None) -> list[str]:
    """Non-empty lines of a bundled real report, in order."""
    text = (GOV / f"{name}.txt").read_text(encoding="utf-8")
    paras = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return paras[:limit] if limit else paras


def canonical(text: str) -> str:
    """NFKC, no white space: the form texts are compared in."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def char_f1(extracted: str, source: str) -> float:
    """Bag-of-characters F1 between two texts (white space ignored)."""
    a, b = Counter(canonical(extracted)), Counter(canonical(source))
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    p, r = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * p * r / (p + r)


def source_sentences(paras: list[str]) -> list[str]:
    out = []
    for p in paras:
        out += [canonical(s) for s in _SENT_END.split(p) if len(canonical(s)) >= 4]
    return out


def sentence_recall(blocks: list[str], paras: list[str]) -> float:
    """Share of the source's sentences found whole inside one extracted block."""
    canon = [canonical(b) for b in blocks]
    sents = source_sentences(paras)
    found = 0
    j = 0
    for s in sents:  # blocks come in order: search forward from the last hit, then everywhere
        hit = next((k for k in range(j, len(canon)) if s in canon[k]), None)
        if hit is None:
            hit = next((k for k in range(len(canon)) if s in canon[k]), None)
        if hit is not None:
            found += 1
            j = hit
    return found / max(len(sents), 1)


def is_heading(p: str) -> bool:
    return bool(re.match(r"^[一二三四五六七八九十]+、", p)) and len(p) < 40


# --- PDF (reportlab, built-in STSong-Light CID font) -----------------------------------------

def draw_running_head_and_folio(canvas, head: str, folio: int) -> None:  # noqa: ANN001
    """What a word processor prints on a page: a running head on top, "— folio —" at the foot."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    canvas.saveState()
    canvas.setFont("STSong-Light", 9)
    w, h = A4
    canvas.drawCentredString(w / 2, h - 12 * mm, head)
    canvas.drawCentredString(w / 2, 10 * mm, f"— {folio} —")
    canvas.restoreState()


def make_pdf(paras: list[str], path: Path, *, running_head: str = "政府工作报告",
             folio_offset: int = 0, table: list[list[str]] | None = None, min_pages: int = 0,
             font_size: float = 11) -> Path:
    """A Word-like PDF: indented body paragraphs, headings, a running head and '— N —' folios."""
    from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    body = ParagraphStyle("body", fontName="STSong-Light", fontSize=font_size, leading=font_size * 1.6,
                          firstLineIndent=font_size * 2, alignment=TA_JUSTIFY, wordWrap="CJK")
    head = ParagraphStyle("head", parent=body, fontSize=font_size + 3, leading=(font_size + 3) * 1.6,
                          firstLineIndent=0, spaceBefore=6, spaceAfter=6)
    title = ParagraphStyle("title", parent=head, fontSize=font_size + 7, alignment=TA_CENTER)

    def furniture(canvas, doc_) -> None:  # noqa: ANN001 - reportlab callback
        draw_running_head_and_folio(canvas, running_head, doc_.page + folio_offset)

    story = []
    for i, p in enumerate(paras):
        style = title if i == 0 else head if is_heading(p) else body
        story.append(Paragraph(_esc(p), style))
        if table is not None and i == len(paras) // 2:
            t = Table(table)
            t.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), "STSong-Light"),
                                   ("GRID", (0, 0), (-1, -1), 0.5, "black")]))
            story += [Spacer(1, 6), t, Spacer(1, 6)]
    pages_now = 0
    while min_pages and pages_now < min_pages:  # repeat the report until long enough
        doc = SimpleDocTemplate(str(path), pagesize=A4)
        doc.build(list(story), onFirstPage=furniture, onLaterPages=furniture)
        import pypdfium2 as pdfium

        pages_now = len(pdfium.PdfDocument(str(path)))
        if pages_now < min_pages:
            story += [PageBreak()] + story[: len(story)]
    if not min_pages:
        doc = SimpleDocTemplate(str(path), pagesize=A4)
        doc.build(story, onFirstPage=furniture, onLaterPages=furniture)
    return path


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- DOCX (python-docx) ------------------------------------------------------------------------

def make_docx(paras: list[str], path: Path, *, table: list[list[str]] | None = None,
              footnote: str | None = None, header: str = "青海省人民政府", footer: str = "第 1 页") -> Path:
    import docx

    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = header
    d.sections[0].footer.paragraphs[0].text = footer
    for i, p in enumerate(paras):
        if i == 0:
            d.add_heading(p, level=0)
        elif is_heading(p):
            d.add_heading(p, level=1)
        else:
            d.add_paragraph(p)
        if table is not None and i == len(paras) // 2:
            t = d.add_table(rows=len(table), cols=len(table[0]), style="Table Grid")
            for r, row in enumerate(table):
                for c, cell in enumerate(row):
                    t.cell(r, c).text = cell
    d.save(str(path))
    if footnote:
        _add_footnote(path, footnote)
    return path


def _add_footnote(path: Path, text: str) -> None:
    """python-docx cannot write footnotes: add word/footnotes.xml as Word does, with zipfile."""
    import zipfile

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    notes = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:footnotes xmlns:w="{w}">'
             '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
             '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/>'
             '</w:r></w:p></w:footnote>'
             f'<w:footnote w:id="1"><w:p><w:r><w:t>{_esc(text)}</w:t></w:r></w:p></w:footnote></w:footnotes>')
    rel = ('<Relationship Id="rIdFn1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
           'relationships/footnotes" Target="footnotes.xml"/>')
    ctype = ('<Override PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-'
             'officedocument.wordprocessingml.footnotes+xml"/>')
    src = zipfile.ZipFile(path)
    parts = {i.filename: src.read(i.filename) for i in src.infolist()}
    src.close()
    parts["word/footnotes.xml"] = notes.encode()
    parts["word/_rels/document.xml.rels"] = parts["word/_rels/document.xml.rels"].replace(
        b"</Relationships>", rel.encode() + b"</Relationships>")
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(b"</Types>", ctype.encode() + b"</Types>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


# --- HTML (a saved government web page) ----------------------------------------------------------

def make_html(paras: list[str], encoding: str = "utf-8") -> bytes:
    nav = "".join(f'<li><a href="/c{i}">栏目{i}</a></li>' for i in range(12))
    body = "".join(f"<h2>{_esc(p)}</h2>" if is_heading(p) else f"<p>{_esc(p)}</p>" for p in paras[1:])
    page = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="{encoding}">'
            f"<title>{_esc(paras[0])}_青海省人民政府网</title>"
            "<script>var _hmt=_hmt||[];document.write('<p>广告</p>')</script>"
            "<style>.nav{float:left}</style></head><body>"
            f'<div class="header"><ul class="nav">{nav}</ul><div class="search">搜索 网站地图 无障碍</div></div>'
            '<div class="crumb">您的位置：首页 &gt; 政务公开 &gt; 政府工作报告</div>'
            f'<div class="article"><h1>{_esc(paras[0])}</h1><div class="info">发布时间：2026-01-31 来源：青海日报'
            f'</div><div class="content" id="zoom">{body}</div></div>'
            '<div class="footer"><p>主办：青海省人民政府办公厅 版权所有 ICP备案号：青ICP备05000123号</p>'
            "<p>联系我们 | 网站地图 | 隐私声明</p></div></body></html>")
    return page.encode(encoding)
