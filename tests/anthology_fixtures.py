"""A small anthology volume built from real report text: cover, 序, 目录 with dot leaders and printed
pages, then articles (title, unit line, body, 执笔 note) — written as a PDF with reportlab
(STSong-Light, running heads, folios that differ from the physical page) and as a DOCX with
python-docx (heading styles). The expected articles come back with it for scoring."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOV = REPO / "corpus" / "sample" / "gov2026"

VOLUME = "机关党建理论研讨材料选编"
EDITOR = "中共西宁市委组织部"
# titles and units as printed in seed 000's TOC; bodies are real report paragraphs
ARTICLES = [
    ("建设学习型机关 提高三服务水平", "中共西宁市委办公厅", "青海省"),
    ("机关党员先进性教育初探", "市直属机关工委", "福建省"),
    ("新时期中小学党建工作的实践与思考", "市教育局", "山东省"),
    ("围绕创新抓党建 抓好党建促发展", "市铁二中", "安徽省"),
]


@dataclass
class Expected:
    title: str
    unit: str
    page: int | None  # printed folio of the article's first page


def _paras(province: str, start: int, n: int) -> list[str]:
    lines = [ln.strip() for ln in (GOV / f"{province}.txt").read_text(encoding="utf-8").splitlines()]
    body = [ln for ln in lines if len(ln) > 60 and ln.endswith("。")]
    return body[start:start + n]


def article_texts(n_paras: int = 4) -> list[tuple[str, str, list[str]]]:
    return [(t, u, _paras(p, 2, n_paras)) for t, u, p in ARTICLES]


def preface() -> list[str]:
    return _paras("河北省", 1, 2)


def make_anthology_pdf(path: Path, n_paras: int = 4) -> list[Expected]:
    """The volume as a PDF 'printed from Word'; returns the articles with their printed pages."""
    from ingest_fixtures import draw_running_head_and_folio
    from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    body = ParagraphStyle("body", fontName="STSong-Light", fontSize=11, leading=18, firstLineIndent=22,
                          alignment=TA_JUSTIFY, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=16, leading=26, firstLineIndent=0,
                           alignment=TA_CENTER, spaceAfter=6)
    centre = ParagraphStyle("centre", parent=body, firstLineIndent=0, alignment=TA_CENTER, spaceAfter=8)
    toc_line = ParagraphStyle("toc", parent=body, firstLineIndent=0, leading=20)
    front_pages = 3  # cover, 序, 目录: no folio; the body's first page is printed 1
    texts = article_texts(n_paras)

    def build(pages: list[int | None]) -> dict[int, int]:
        starts: dict[int, int] = {}

        class Marker(Paragraph):
            def __init__(self, text: str, style: ParagraphStyle, k: int) -> None:
                super().__init__(text, style)
                self.k = k

        def furniture(canvas, doc_) -> None:  # noqa: ANN001 - reportlab callback
            if doc_.page > front_pages:
                draw_running_head_and_folio(canvas, VOLUME, doc_.page - front_pages)

        story = [Paragraph("西宁市机关事业单位", title), Paragraph(VOLUME, title),
                 Paragraph(EDITOR, centre), PageBreak(),
                 Paragraph("序", title), Paragraph("中共西宁市委副书记、组织部部长 高海宾", centre)]
        story += [Paragraph(p, body) for p in preface()] + [PageBreak(), Paragraph("目 录", title)]
        for (t, u, _), pg in zip(texts, pages, strict=True):
            story.append(Paragraph(f"{t}{'.' * 12}{u}（{pg if pg is not None else 0}）", toc_line))
        story.append(PageBreak())
        for k, (t, u, paras) in enumerate(texts):
            story += [Marker(t, title, k), Paragraph(u, centre)]
            story += [Paragraph(p, body) for p in paras]
            story += [Paragraph("（执笔：汪彦明 马锐）", body), PageBreak()]

        class Doc(SimpleDocTemplate):
            def afterFlowable(self, flowable) -> None:  # noqa: ANN001, N802 - reportlab hook
                if isinstance(flowable, Marker):
                    starts[flowable.k] = self.page

        Doc(str(path), pagesize=A4).build(story, onFirstPage=furniture, onLaterPages=furniture)
        return starts

    starts = build([None] * len(texts))  # first pass: where each article lands
    pages = [starts[k] - front_pages for k in range(len(texts))]
    build(pages)
    return [Expected(t, u, p) for (t, u, _), p in zip(texts, pages, strict=True)]


def make_anthology_docx(path: Path, n_paras: int = 3) -> list[Expected]:
    """The volume as a Word file: Title/Heading 1 styles, a typed TOC with dot leaders and pages."""
    import docx
    from docx.enum.text import WD_BREAK

    texts = article_texts(n_paras)
    pages = [1 + 4 * k for k in range(len(texts))]
    d = docx.Document()
    d.add_paragraph("西宁市机关事业单位")
    d.add_heading(VOLUME, level=0)
    d.add_paragraph(EDITOR).add_run().add_break(WD_BREAK.PAGE)
    d.add_heading("序", level=1)
    d.add_paragraph("中共西宁市委副书记、组织部部长 高海宾")
    for p in preface():
        d.add_paragraph(p)
    d.add_heading("目录", level=1)
    for (t, u, _), pg in zip(texts, pages, strict=True):
        d.add_paragraph(f"{t}……………………{u}\t{pg}")
    for t, u, paras in texts:
        d.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        d.add_heading(t, level=1)
        d.add_paragraph(u)
        d.add_heading("一、主要做法", level=2)
        for p in paras:
            d.add_paragraph(p)
        d.add_paragraph("（执笔：汪彦明 马锐）")
    d.save(str(path))
    return [Expected(t, u, p) for (t, u, _), p in zip(texts, pages, strict=True)]
