"""digest.docx: the digest for editors (python-docx), with real heading styles so Word's navigation
pane and a TOC work, tables for the matrix and the problems, and East Asian fonts set explicitly.

Season scale: nothing here grows with the number of sentences. Tables are cut at MAX_DOCX_ROWS
(sliced before their rows are built), recurring problems at MAX_DOCX_CLUSTERS × MAX_DOCX_MEMBERS, and
quotes per unit and role shrink as units grow (the HTML's QUOTE_BUDGET). The body is written as
WordprocessingML text (:class:`BodyXml`: the same elements python-docx's calls make, styles by id) and
parsed once; python-docx makes the package, its styles and fonts. Quotes come from the files' parts
(``common.SeasonBody``), shared with the HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from docx import Document as new_docx
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.oxml import parse_xml
from docx.oxml.ns import qn
from docx.shared import Cm, Emu, Pt, RGBColor
from lxml import etree

from .common import (
    ROLE_NAMES,
    ROLES,
    SeasonBody,
    clean_text,
    frame,
    problem_clusters,
    quotes_per_role,
    role_pivot,
    season_body,
    source_names,
    theme_matrix,
    unit_name,
    unit_profiles,
    unit_theme_counts,
)

BODY_FONT = ("Times New Roman", "宋体")  # (Latin, East Asian): what Chinese editors' Word has
HEADING_FONT = ("Arial", "黑体")
MAX_DOCX_ROWS = 300  # long tables are cut in Word; tables.xlsx has every row
MAX_DOCX_CLUSTERS = 60
MAX_DOCX_MEMBERS = 30  # sentences listed per recurring problem (one per unit first)


def set_style_font(style: Any, latin: str, east_asian: str) -> None:
    """Font of a style for Latin and East Asian text; theme fonts removed so they do not win."""
    style.font.name = latin
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, fonts)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    for attr in ("w:ascii", "w:hAnsi"):
        fonts.set(qn(attr), latin)
    fonts.set(qn("w:eastAsia"), east_asian)


def new_document() -> DocxDocument:
    """A document whose Normal, Title and Heading styles show Chinese in Word and LibreOffice."""
    doc = new_docx()
    styles = doc.styles
    set_style_font(styles["Normal"], *BODY_FONT)
    styles["Normal"].font.size = Pt(10.5)
    for name in ("Title", "Heading 1", "Heading 2", "Heading 3"):
        set_style_font(styles[name], *HEADING_FONT)
        styles[name].font.color.rgb = RGBColor(0x22, 0x22, 0x22)
    # 'lang' eastAsia marks the text as Chinese for spell checking and line breaking
    for style in (styles["Normal"],):
        rpr = style.element.get_or_add_rPr()
        lang = rpr.find(qn("w:lang"))
        if lang is None:  # (an lxml element without children is falsy: test for None)
            lang = rpr.makeelement(qn("w:lang"), {})
            rpr.append(lang)
        lang.set(qn("w:eastAsia"), "zh-CN")
    return doc


def add_para(doc: DocxDocument, text: str = "", style_id: str | None = None) -> Any:
    """doc.add_paragraph with the style given by id (e.g. "Heading2", "ListBullet"): the same markup
    as add_paragraph(style=name) without a scan of all styles per paragraph."""
    para = doc.add_paragraph(text)
    if style_id:
        para._p.style = style_id
    return para


def add_heading(doc: DocxDocument, text: str, level: int) -> Any:
    return add_para(doc, text, "Title" if level == 0 else f"Heading{level}")


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_SPLIT = re.compile(r"([\t\r\n])")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _run(text: str, rpr: str = "") -> str:
    """One w:r as python-docx's add_run(text) writes it: tab → w:tab, CR/LF → w:br, xml:space
    preserved on a w:t with surrounding white space; no run content for ''. """
    if not ("\t" in text or "\n" in text or "\r" in text):  # the common case: one w:t or none
        if not text:
            return f"<w:r>{rpr}</w:r>"
        space = ' xml:space="preserve"' if len(text.strip()) < len(text) else ""
        return f"<w:r>{rpr}<w:t{space}>{_esc(text)}</w:t></w:r>"
    out = [f"<w:r>{rpr}"]
    for piece in _SPLIT.split(text):
        if piece == "\t":
            out.append("<w:tab/>")
        elif piece in ("\r", "\n"):
            out.append("<w:br/>")
        elif piece:
            space = ' xml:space="preserve"' if len(piece.strip()) < len(piece) else ""
            out.append(f"<w:t{space}>{_esc(piece)}</w:t>")
    out.append("</w:r>")
    return "".join(out)


class BodyXml:
    """The document body as WordprocessingML text, parsed once and appended to a python-docx document.

    Issue 8: python-docx's object API costs ~0.1 ms per run and cell (XPath lookups per insert), ~4 s
    for a 1,000-unit season; the markup written here is what those calls write (same elements,
    attributes and order), built as strings and parsed by lxml in one go.
    """

    def __init__(self, block_width: int) -> None:
        self.chunks: list[str] = []
        self.block_width = block_width  # EMU, for the default column widths python-docx gives

    def para(self, text: str = "", style_id: str | None = None, runs: str = "") -> None:
        ppr = f'<w:pPr><w:pStyle w:val="{style_id}"/></w:pPr>' if style_id else ""
        self.chunks.append(f"<w:p>{ppr}{_run(text) if text else ''}{runs}</w:p>")

    def heading(self, text: str, level: int) -> None:
        self.para(text, "Title" if level == 0 else f"Heading{level}")

    def table(self, header: list[str], rows: list[list[Any]], widths: list[float] | None = None,
              limit: int = MAX_DOCX_ROWS, total: int | None = None) -> None:
        """A bordered table with a bold header row repeated on every page; ``total`` is the table's
        full length when the caller passes only its first rows."""
        total = len(rows) if total is None else total
        shown = rows[:limit]
        n_cols = len(header)
        default = Emu(self.block_width // n_cols).twips
        tcw = [f'<w:tcPr><w:tcW w:type="dxa" w:w="{Cm(widths[j]).twips if widths and j < len(widths) else default}"/>'
               "</w:tcPr>" for j in range(n_cols)]
        out = ['<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:type="auto" w:w="0"/>'
               '<w:tblLook w:firstColumn="1" w:firstRow="1" w:lastColumn="0" w:lastRow="0" w:noHBand="0" '
               'w:noVBand="1" w:val="04A0"/></w:tblPr><w:tblGrid>',
               f'<w:gridCol w:w="{default}"/>' * n_cols, "</w:tblGrid><w:tr><w:trPr><w:tblHeader/></w:trPr>"]
        for j, text in enumerate(header):
            out.append(f"<w:tc>{tcw[j]}<w:p>{_run(clean_text(text), '<w:rPr><w:b/></w:rPr>')}</w:p></w:tc>")
        out.append("</w:tr>")
        for row in shown:
            if len(row) != n_cols:
                raise ValueError(f"a row of {len(row)} cells in a table of {n_cols} columns")
            out.append("<w:tr>")
            for j, v in enumerate(row):
                if type(v) is int:  # counts: nothing to clean or escape
                    out.append(f"<w:tc>{tcw[j]}<w:p><w:r><w:t>{v}</w:t></w:r></w:p></w:tc>")
                    continue
                text = clean_text(v)
                out.append(f"<w:tc>{tcw[j]}<w:p>{_run(text)}</w:p></w:tc>" if text
                           else f"<w:tc>{tcw[j]}<w:p/></w:tc>")
            out.append("</w:tr>")
        out.append("</w:tbl>")
        self.chunks.append("".join(out))
        if total > len(shown):
            self.para(f"（仅列前 {len(shown)} 行，共 {total} 行；全部见 tables.xlsx。）")

    def append_to(self, doc: DocxDocument) -> None:
        """Put the collected markup at the end of the body (before its section properties).

        The document's XML is written out and parsed again with the markup in it: moving thousands of
        parsed elements into another tree one by one costs lxml a namespace reconciliation each."""
        if not self.chunks:
            return
        root = doc.element
        sect = root.body.find(qn("w:sectPr"))
        marker = "huibian:digest-body:5f3a9c"  # a comment no report can have put there
        anchor = etree.Comment(marker)
        if sect is not None:
            sect.addprevious(anchor)
        else:
            root.body.append(anchor)
        head, tail = etree.tostring(root, encoding="unicode").split(f"<!--{marker}-->")
        new_root = parse_xml(head + "".join(self.chunks) + tail)
        self.chunks = []
        doc._element = doc.part._element = new_root  # the part's element is what save() serialises
        doc._Document__body = None  # type: ignore[attr-defined]  # python-docx re-wraps the new body


def add_table(doc: DocxDocument, header: list[str], rows: list[list[Any]], widths: list[float] | None = None,
              limit: int = MAX_DOCX_ROWS, total: int | None = None) -> None:
    """A bordered table with a bold header row repeated on every page (appended to ``doc`` now)."""
    body = BodyXml(doc._block_width)
    body.table(header, rows, widths, limit, total)
    body.append_to(doc)


_CITE_RPR = '<w:rPr><w:color w:val="777777"/><w:sz w:val="16"/></w:rPr>'


def _cite(names: dict[str, str], q: dict[str, Any]) -> str:
    parts = [names.get(str(q.get("doc_id")), clean_text(q.get("doc_id")))]
    if q.get("page") is not None:
        parts.append(f"第{q['page']}页")
    if q.get("section"):
        parts.append(clean_text(q["section"]))
    return "，".join(p for p in parts if p)


def build_docx(frames: dict[str, pd.DataFrame], meta: dict[str, Any],
               parts: Sequence[Mapping[str, Any]] | None = None, *, body: SeasonBody | None = None,
               profiles: list[dict[str, Any]] | None = None,
               clusters: list[dict[str, Any]] | None = None) -> DocxDocument:
    """The digest as a python-docx Document. Report text comes from ``parts`` (see
    :class:`~pipeline.digest.common.SeasonBody`), or without them from frames["sentences"];
    ``body``/``profiles``/``clusters`` when the caller has them already (shared with the HTML:
    clusters made with MAX_DOCX_MEMBERS members and at least MAX_DOCX_CLUSTERS clusters, of which the
    first MAX_DOCX_CLUSTERS are shown, as :func:`problem_clusters` orders them)."""
    names = source_names(frames)
    doc = new_document()
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    doc.core_properties.title = f"汇编 · {meta.get('season', '')} 摘要"
    out = BodyXml(doc._block_width)
    out.heading(f"汇编 · {clean_text(meta.get('season', ''))}", 0)
    arts = frame(frames, "articles", ("article_id",))
    out.para(f"{meta.get('ok', 0)} 份文件已读入，{meta.get('rejected', 0)} 份被拒收；"
             f"{0 if arts is None else len(arts)} 篇文章，{meta.get('sentences', 0)} 个句子。")

    out.heading("概览：单位 × 角色", 1)
    body = season_body(frames, parts, body)
    pivot = role_pivot(frames, body)
    head = pivot.head(MAX_DOCX_ROWS)
    at = [head.columns.get_loc(r) for r in (*ROLES, "other")]  # rows as lists: iterrows makes a Series each
    out.table(["单位", *[ROLE_NAMES[r] for r in ROLES], "其他"],
              [[u, *[int(row[j]) for j in at]] for u, row in zip(head.index, head.to_numpy().tolist(), strict=True)],
              total=len(pivot))

    m = theme_matrix(frames)
    if m is not None:
        out.heading("单位 × 主题 × 角色", 1)
        for role in ROLES:
            sub = m[m["label"] == role]
            if sub.empty:
                continue
            p = unit_theme_counts(sub)
            out.heading(ROLE_NAMES[role], 2)
            out.table(["单位", *map(str, p.columns)],
                      [[u, *[int(v) if v else "" for v in row]]
                       for u, row in zip(p.index[:MAX_DOCX_ROWS], p.to_numpy()[:MAX_DOCX_ROWS].tolist(),
                                         strict=True)],
                      total=len(p))

    out.heading("各单位", 1)
    if profiles is None:
        profiles = unit_profiles(frames, per_role=quotes_per_role(len(body.units)), body=body)
    for u in profiles:
        out.heading(u["unit"], 2)
        if u["keywords"]:
            out.para("关键词：" + "、".join(u["keywords"]))
        for role in ROLES:
            r = u["roles"][role]
            if not r["n"]:
                continue
            out.heading(f"{ROLE_NAMES[role]}（{r['n']}）", 3)
            for q in r["quotes"]:
                out.para("", "ListBullet", _run(clean_text(q["text"])) + _run(f"　——{_cite(names, q)}", _CITE_RPR))

    if clusters is None:
        clusters = problem_clusters(frames, names, max_clusters=MAX_DOCX_CLUSTERS, max_members=MAX_DOCX_MEMBERS)
    clusters = clusters[:MAX_DOCX_CLUSTERS]
    if clusters:
        out.heading("共性问题", 1)
        p = frame(frames, "problems", ("cluster_id",))
        n_clusters = 0 if p is None else int(p["cluster_id"].nunique())
        if n_clusters > len(clusters):
            out.para(f"共 {n_clusters} 组，此处列涉及单位最多的 {len(clusters)} 组；"
                     "全部见 tables.xlsx 的 problems 表。")
        for c in clusters:
            out.heading(f"{c['name']}（{c['n']} 句，{len(c['units'])} 个单位）", 2)
            out.table(["单位", "角色", "句子", "出处"],
                      [[m["unit"], ROLE_NAMES.get(m.get("label"), m.get("label")),
                        m.get("sentence") or m.get("text"), _cite(names, m)] for m in c["members"]],
                      widths=[2.5, 1.8, 9.5, 3.0], total=c["n"])

    copies = frame(frames, "copies", ("doc_id_a", "doc_id_b", "text"))
    if copies is not None:
        out.heading("雷同段落", 1)
        out.table(["文件甲", "文件乙", "共有文字", "占甲", "占乙"],
                  [[names.get(str(r["doc_id_a"]), r["doc_id_a"]), names.get(str(r["doc_id_b"]), r["doc_id_b"]),
                    r["text"], _pct(r.get("share_a")), _pct(r.get("share_b"))]
                   for r in copies.head(MAX_DOCX_ROWS).to_dict("records")], widths=[2.8, 2.8, 9, 1.5, 1.5],
                  total=len(copies))

    figures = frame(frames, "figures", ("unit", "text"))
    if figures is not None:
        out.heading("数据", 1)
        cols = [c for c in ("unit", "subject", "value", "measure_unit", "is_target", "text") if c in figures]
        out.table(cols, [[unit_name(v) if c == "unit" else v for c, v in zip(cols, row, strict=True)]
                         for row in figures[cols].head(MAX_DOCX_ROWS).itertuples(index=False)],
                  total=len(figures))

    compare = frame(frames, "compare")
    if compare is not None:
        out.heading("与上期比较", 1)
        out.table([str(c) for c in compare.columns],
                  [list(r) for r in compare.head(MAX_DOCX_ROWS).astype(object).itertuples(index=False)],
                  total=len(compare))

    docs = frame(frames, "documents", ("source", "status"))
    if docs is not None:
        out.heading("文件", 1)
        out.table(["文件", "状态", "原因"],
                  # column by column: to_dict("records") boxes every cell of every column (~0.1 s)
                  [list(r) for r in zip(docs["source"].tolist(), docs["status"].tolist(),
                                        docs["reason"].tolist() if "reason" in docs.columns else [""] * len(docs),
                                        strict=True)],
                  limit=10_000)
    out.append_to(doc)
    return doc


def _pct(v: Any) -> str:
    try:
        return f"{float(v):.0%}"
    except (TypeError, ValueError):
        return ""


def write_docx(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path,
               parts: Sequence[Mapping[str, Any]] | None = None, *, body: SeasonBody | None = None,
               profiles: list[dict[str, Any]] | None = None, clusters: list[dict[str, Any]] | None = None) -> None:
    build_docx(frames, meta, parts, body=body, profiles=profiles, clusters=clusters).save(str(path))
