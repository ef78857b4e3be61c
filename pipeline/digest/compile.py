"""``huibian compile DIR --out volume.docx [--order FILE] [--title T]``: an anthology from a run.

Like the Xining volume (seed 000): cover, 序 (placeholder for the editor), 目录 with titles, units and
page numbers, then the articles in order, each on a new page with its unit and 执笔 byline.

Word computes page numbers only when it lays the document out, so a TOC field alone would show
stale numbers. Instead the DOCX is rendered to PDF with LibreOffice, each article's first page is
found in the PDF, the numbers are written into the 目录 and the volume is rendered again, until the
numbers are stable (at most three passes). Both volume.docx and volume.pdf are delivered. Page
numbers are physical pages of the volume, and the footer prints the same number.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK, WD_TAB_ALIGNMENT, WD_TAB_LEADER
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt

from .common import clean_text
from .docx import HEADING_FONT, new_document, set_style_font

TOC_STYLE = "汇编目录"  # the 目录 entries' paragraph style: readers (and the tests) find entries by it
BYLINE_STYLE = "汇编署名"
MAX_PASSES = 3
MAX_HEADING_CHARS = 40
SOFFICE_TIMEOUT = 300


class CompileError(Exception):
    """The volume cannot be compiled; a one-line message for the user."""


@dataclass
class Entry:
    article_id: str
    title: str
    unit: str = ""
    author: str = ""
    paragraphs: list[tuple[str, str]] = field(default_factory=list)  # (kind, text): "heading"/"body"
    page: int | None = None


# ---------------------------------------------------------------- reading the run

def _s(v: object) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else clean_text(v).strip()


def _norm(text: str) -> str:
    """For matching titles: no white space, full-width forms unified."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def load_entries(run_dir: Path, order: Path | None = None) -> tuple[list[Entry], list[str]]:
    """The volume's articles (not front matter) with their paragraphs; warnings for the user."""
    from ..run import load_frames

    if not run_dir.is_dir():
        raise CompileError(f"not a folder: {run_dir}")
    frames = load_frames(run_dir)
    if "articles" not in frames or "sentences" not in frames:
        raise CompileError(f"no articles.parquet / sentences.parquet in {run_dir} (run `huibian run` first)")
    arts, sents = frames["articles"], frames["sentences"]
    if "kind" in arts.columns:
        arts = arts[arts["kind"].fillna("") != "front"]
    if "kind" in sents.columns:
        sents = sents[sents["kind"].isin(["body", "heading", "table"])]
    warnings: list[str] = []
    entries: dict[str, Entry] = {}
    by_article = {str(a): g.sort_values(["doc_id", "idx"]) for a, g in sents.groupby("article_id")}
    for a in arts.to_dict("records"):
        aid = str(a["article_id"])
        g = by_article.get(aid)
        if g is None or g.empty:
            continue
        e = Entry(aid, _s(a.get("title")) or "（无题）", _s(a.get("unit")), _s(a.get("author")))
        e.paragraphs = _paragraphs(g, e.title, e.unit, e.author)
        if e.paragraphs:
            entries[aid] = e
    chosen = list(entries.values())
    if order is not None:
        chosen = _ordered(chosen, order, warnings)
    if not chosen:
        raise CompileError(f"no articles with text in {run_dir}" + (f" matching {order}" if order else ""))
    return chosen, warnings


def _paragraphs(g: pd.DataFrame, title: str, unit: str = "", author: str = "") -> list[tuple[str, str]]:
    """Sentences regrouped into the source's paragraphs.

    The article's own title, unit and 执笔 lines at its top are dropped: the volume prints its own
    title and byline. A "heading" longer than a heading can be (a segmentation slip) is set as prose.
    """
    out: list[tuple[str, str]] = []
    key = None
    furniture = {_norm(x) for x in (title, unit, author) if x}
    for r in g.to_dict("records"):
        text = _s(r.get("text"))
        if not text:
            continue
        kind = "heading" if r.get("kind") == "heading" and len(text) <= MAX_HEADING_CHARS else "body"
        if not out and (_norm(text) in furniture or _norm(text).startswith(("执笔", "作者"))):
            continue
        k = (r.get("doc_id"), r.get("para"), kind)
        if out and k == key and kind == "body":
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))
        key = k
    return out


def _ordered(entries: list[Entry], order: Path, warnings: list[str]) -> list[Entry]:
    """The entries the order file lists (article ids or titles, one a line), in its order."""
    if not order.is_file():
        raise CompileError(f"order file not found: {order}")
    by_id = {e.article_id: e for e in entries}
    by_title: dict[str, list[Entry]] = {}
    for e in entries:
        by_title.setdefault(_norm(e.title), []).append(e)
    out: list[Entry] = []
    for line in order.read_text(encoding="utf-8-sig").splitlines():
        want = line.strip()
        if not want or want.startswith("#"):
            continue
        hit = by_id.get(want) or next((e for e in by_title.get(_norm(want), []) if e not in out), None)
        if hit is None:
            warnings.append(f"order file: no article with id or title {want!r}")
        elif hit not in out:
            out.append(hit)
    return out


# ---------------------------------------------------------------- writing the volume

def _page_field(paragraph) -> None:  # noqa: ANN001 - python-docx paragraph
    """A PAGE field: Word and LibreOffice print the page's number there."""
    run = paragraph.add_run()
    for tag, attrs, text in (("w:fldChar", {"w:fldCharType": "begin"}, None),
                             ("w:instrText", {"xml:space": "preserve"}, " PAGE "),
                             ("w:fldChar", {"w:fldCharType": "separate"}, None),
                             ("w:t", {}, "1"),
                             ("w:fldChar", {"w:fldCharType": "end"}, None)):
        el = OxmlElement(tag)
        for k, v in attrs.items():
            el.set(qn(k), v)
        if text is not None:
            el.text = text
        run._r.append(el)


def build_volume(entries: list[Entry], title: str) -> DocxDocument:
    doc = new_document()
    styles = doc.styles
    toc_style = styles.add_style(TOC_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    toc_style.base_style = styles["Normal"]
    toc_style.font.size = Pt(11)
    toc_style.paragraph_format.space_after = Pt(2)
    byline = styles.add_style(BYLINE_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    byline.base_style = styles["Normal"]
    byline.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    set_style_font(byline, *HEADING_FONT)
    section = doc.sections[0]
    text_width = section.page_width - section.left_margin - section.right_margin

    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.add_run("— ")
    _page_field(footer)
    footer.add_run(" —")

    # cover
    for _ in range(6):
        doc.add_paragraph()
    t = doc.add_paragraph(style="Title")
    t.alignment = WD_ALIGN_PARAGRAPH.CENTER
    t.add_run(title)
    sub = doc.add_paragraph(f"共收文章 {len(entries)} 篇")
    sub.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)

    # 序: a placeholder the editor replaces
    doc.add_heading("序", level=1).alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph("（序言由编者撰写。）")
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)

    # 目录: title, tab with dot leader, page number; unit and author beneath
    doc.add_heading("目录", level=1).alignment = WD_ALIGN_PARAGRAPH.CENTER
    for e in entries:
        p = doc.add_paragraph(style=TOC_STYLE)
        p.paragraph_format.tab_stops.add_tab_stop(text_width, WD_TAB_ALIGNMENT.RIGHT, WD_TAB_LEADER.DOTS)
        p.paragraph_format.keep_with_next = True
        p.add_run(e.title)
        p.add_run("\t" + (str(e.page) if e.page is not None else ""))
        who = "　".join(x for x in (e.unit, f"执笔：{e.author}" if e.author else "") if x)
        if who:
            w = doc.add_paragraph(who)
            w.paragraph_format.left_indent = Pt(24)
            w.paragraph_format.space_after = Pt(4)
            w.runs[0].font.size = Pt(9)

    # the articles, each from a new page
    for e in entries:
        h = doc.add_heading(e.title, level=1)
        h.alignment = WD_ALIGN_PARAGRAPH.CENTER
        h.paragraph_format.page_break_before = True
        if e.unit:
            doc.add_paragraph(e.unit, style=BYLINE_STYLE)
        if e.author:
            doc.add_paragraph(f"执笔：{e.author}", style=BYLINE_STYLE)
        for kind, text in e.paragraphs:
            if kind == "heading":
                doc.add_heading(text, level=2)
            else:
                p = doc.add_paragraph(text)
                p.paragraph_format.first_line_indent = Pt(21)  # two characters, as Chinese prose sets
    doc.core_properties.title = title
    return doc


# ---------------------------------------------------------------- rendering and page numbers

def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def render_pdf(docx_path: Path, out_dir: Path, profile: Path) -> Path:
    """DOCX → PDF with LibreOffice headless (a private profile: no lock clashes with a desktop LO)."""
    exe = soffice()
    if exe is None:
        raise CompileError("LibreOffice (soffice) not found")
    cmd = [exe, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
           "--convert-to", "pdf", "--outdir", str(out_dir), str(docx_path)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=SOFFICE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CompileError(f"LibreOffice took longer than {SOFFICE_TIMEOUT}s converting {docx_path.name}") from None
    pdf = out_dir / (docx_path.stem + ".pdf")
    if res.returncode != 0 or not pdf.exists():
        raise CompileError(f"LibreOffice could not convert {docx_path.name}: {(res.stderr or res.stdout).strip()[:300]}")
    return pdf


def pdf_page_texts(pdf: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        out = []
        for page in doc:
            tp = page.get_textpage()
            out.append(tp.get_text_range())
            tp.close()
            page.close()
        return out
    finally:
        doc.close()


def title_starts_page(title: str, page_text: str) -> bool:
    """The page begins with the title (allowing a few characters of furniture such as a folio)."""
    t, p = _norm(title), _norm(page_text)
    return bool(t) and p.find(t[:60]) in range(0, 12)


def find_start_pages(entries: list[Entry], pages: list[str]) -> list[int | None]:
    """1-based page where each article starts, searched in order after the 目录."""
    toc_page = next((i for i, p in enumerate(pages) if _norm(p).startswith("目录")), 0)
    out: list[int | None] = []
    cursor = toc_page + 1
    for e in entries:
        hit = next((i for i in range(cursor, len(pages)) if title_starts_page(e.title, pages[i])), None)
        out.append(None if hit is None else hit + 1)
        if hit is not None:
            cursor = hit + 1
    return out


def compile_volume(entries: list[Entry], title: str, out: Path, warn=print) -> Path | None:  # noqa: ANN001
    """Write out (DOCX) and, with LibreOffice, out.pdf with a correct 目录; returns the PDF path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if soffice() is None:
        build_volume(entries, title).save(str(out))
        warn("huibian: LibreOffice (soffice) not found: wrote the DOCX without page numbers in the 目录 "
             "and no PDF; install libreoffice and compile again")
        return None
    with tempfile.TemporaryDirectory(prefix="huibian-compile-") as tmp:
        tmpdir = Path(tmp)
        work = tmpdir / (out.stem + ".docx")
        pages: list[int | None] = [None] * len(entries)
        pdf = None
        for _ in range(MAX_PASSES):
            for e, p in zip(entries, pages, strict=True):
                e.page = p
            build_volume(entries, title).save(str(work))
            pdf = render_pdf(work, tmpdir, tmpdir / "lo-profile")
            found = find_start_pages(entries, pdf_page_texts(pdf))
            if found == pages:
                break  # the numbers printed are the pages found: stable
            pages = found
        else:
            warn(f"huibian: 目录 page numbers not stable after {MAX_PASSES} passes; check the 目录")
        missing = [e.title for e, p in zip(entries, pages, strict=True) if p is None]
        if missing:
            warn(f"huibian: could not find the start page of {len(missing)} article(s) in the PDF: "
                 + "；".join(missing[:5]))
        shutil.copyfile(work, out)
        final_pdf = out.with_suffix(".pdf")
        assert pdf is not None
        shutil.copyfile(pdf, final_pdf)
    return final_pdf


def _volume_title(run_dir: Path) -> str:
    import json

    m = run_dir / "manifest.json"
    season = ""
    if m.exists():
        try:
            season = str(json.loads(m.read_text(encoding="utf-8")).get("season") or "")
        except (ValueError, OSError):
            season = ""
    return f"{season}材料汇编" if season and season != "latest" else "材料汇编"


def compile_command(args: argparse.Namespace) -> int:
    run_dir = Path(args.dir)
    out = Path(args.out)
    if out.suffix.lower() != ".docx":
        out = out.with_suffix(".docx")
    try:
        entries, warnings = load_entries(run_dir, Path(args.order) if args.order else None)
        for w in warnings:
            print(f"huibian: {w}", file=sys.stderr)
        pdf = compile_volume(entries, args.title or _volume_title(run_dir), out,
                             warn=lambda m: print(m, file=sys.stderr))
    except CompileError as e:
        print(f"huibian: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"huibian: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"{len(entries)} articles → {out}" + (f" and {pdf}" if pdf else ""))
    return 0
