"""digest.docx: the digest for editors (python-docx), with real heading styles so Word's navigation
pane and a TOC work, tables for the matrix and the problems, and East Asian fonts set explicitly.

Season scale: nothing here grows with the number of sentences. Tables are cut at MAX_DOCX_ROWS
(sliced before their rows are built), recurring problems at MAX_DOCX_CLUSTERS × MAX_DOCX_MEMBERS, and
quotes per unit and role shrink as units grow (the HTML's QUOTE_BUDGET). Paragraph styles are set by
id: python-docx's lookup by name scans every style for each paragraph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from docx import Document as new_docx
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from .common import (
    LIGHT_COLUMNS,
    ROLE_NAMES,
    ROLES,
    body_sentences,
    clean_text,
    frame,
    problem_clusters,
    quotes_per_role,
    role_pivot,
    source_names,
    theme_matrix,
    unit_name,
    unit_profiles,
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


def add_table(doc: DocxDocument, header: list[str], rows: list[list[Any]], widths: list[float] | None = None,
              limit: int = MAX_DOCX_ROWS, total: int | None = None) -> None:
    """A bordered table with a bold header row repeated on every page; ``total`` is the table's full
    length when the caller passes only its first rows."""
    total = len(rows) if total is None else total
    shown = rows[:limit]
    # all rows at once: python-docx's add_row() re-reads the grid and gets slow on long tables
    table = doc.add_table(rows=len(shown) + 1, cols=len(header))
    table.style = "Table Grid"
    grid = [row.cells for row in table.rows]
    for cell, text in zip(grid[0], header, strict=True):
        cell.paragraphs[0].add_run(clean_text(text)).bold = True
    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    tr_pr.append(tr_pr.makeelement(qn("w:tblHeader"), {}))  # header repeats across pages
    for cells, row in zip(grid[1:], shown, strict=True):
        for cell, v in zip(cells, row, strict=True):
            text = clean_text(v)
            if text:
                cell.paragraphs[0].add_run(text)
    if widths:
        for cells in grid:
            for cell, w in zip(cells, widths, strict=False):
                cell.width = Cm(w)
    if total > len(shown):
        doc.add_paragraph(f"（仅列前 {len(shown)} 行，共 {total} 行；全部见 tables.xlsx。）")


def _cite(names: dict[str, str], q: dict[str, Any]) -> str:
    parts = [names.get(str(q.get("doc_id")), clean_text(q.get("doc_id")))]
    if q.get("page") is not None:
        parts.append(f"第{q['page']}页")
    if q.get("section"):
        parts.append(clean_text(q["section"]))
    return "，".join(p for p in parts if p)


def build_docx(frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> DocxDocument:
    names = source_names(frames)
    doc = new_document()
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    doc.core_properties.title = f"汇编 · {meta.get('season', '')} 摘要"
    doc.add_heading(f"汇编 · {clean_text(meta.get('season', ''))}", level=0)
    arts = frame(frames, "articles", ("article_id",))
    doc.add_paragraph(f"{meta.get('ok', 0)} 份文件已读入，{meta.get('rejected', 0)} 份被拒收；"
                      f"{0 if arts is None else len(arts)} 篇文章，{meta.get('sentences', 0)} 个句子。")

    doc.add_heading("概览：单位 × 角色", level=1)
    pivot = role_pivot(frames)
    add_table(doc, ["单位", *[ROLE_NAMES[r] for r in ROLES], "其他"],
              [[u, *[int(row[r]) for r in ROLES], int(row["other"])]
               for u, row in pivot.head(MAX_DOCX_ROWS).iterrows()], total=len(pivot))

    m = theme_matrix(frames)
    if m is not None:
        doc.add_heading("单位 × 主题 × 角色", level=1)
        for role in ROLES:
            sub = m[m["label"] == role]
            if sub.empty:
                continue
            p = sub.pivot_table(index="unit", columns="theme", values="n", aggfunc="sum", fill_value=0)
            doc.add_heading(ROLE_NAMES[role], level=2)
            add_table(doc, ["单位", *map(str, p.columns)],
                      [[u, *[int(v) if v else "" for v in row]] for u, row in p.head(MAX_DOCX_ROWS).iterrows()],
                      total=len(p))

    doc.add_heading("各单位", level=1)
    body = body_sentences(frames, LIGHT_COLUMNS)  # small columns; quotes fetch their text
    n_units = int(body["unit"].nunique()) if len(body) else 0
    for u in unit_profiles(frames, per_role=quotes_per_role(n_units), sentences=body):
        add_heading(doc, u["unit"], 2)
        if u["keywords"]:
            doc.add_paragraph("关键词：" + "、".join(u["keywords"]))
        for role in ROLES:
            r = u["roles"][role]
            if not r["n"]:
                continue
            add_heading(doc, f"{ROLE_NAMES[role]}（{r['n']}）", 3)
            for q in r["quotes"]:
                para = add_para(doc, "", "ListBullet")
                para.add_run(clean_text(q["text"]))
                cite = para.add_run(f"　——{_cite(names, q)}")
                cite.font.size = Pt(8)
                cite.font.color.rgb = RGBColor(0x77, 0x77, 0x77)

    clusters = problem_clusters(frames, names, max_clusters=MAX_DOCX_CLUSTERS, max_members=MAX_DOCX_MEMBERS)
    if clusters:
        doc.add_heading("共性问题", level=1)
        p = frame(frames, "problems", ("cluster_id",))
        n_clusters = 0 if p is None else int(p["cluster_id"].nunique())
        if n_clusters > len(clusters):
            doc.add_paragraph(f"共 {n_clusters} 组，此处列涉及单位最多的 {len(clusters)} 组；"
                              "全部见 tables.xlsx 的 problems 表。")
        for c in clusters:
            add_heading(doc, f"{c['name']}（{c['n']} 句，{len(c['units'])} 个单位）", 2)
            add_table(doc, ["单位", "角色", "句子", "出处"],
                      [[m["unit"], ROLE_NAMES.get(m.get("label"), m.get("label")),
                        m.get("sentence") or m.get("text"), _cite(names, m)] for m in c["members"]],
                      widths=[2.5, 1.8, 9.5, 3.0], total=c["n"])

    copies = frame(frames, "copies", ("doc_id_a", "doc_id_b", "text"))
    if copies is not None:
        doc.add_heading("雷同段落", level=1)
        add_table(doc, ["文件甲", "文件乙", "共有文字", "占甲", "占乙"],
                  [[names.get(str(r["doc_id_a"]), r["doc_id_a"]), names.get(str(r["doc_id_b"]), r["doc_id_b"]),
                    r["text"], _pct(r.get("share_a")), _pct(r.get("share_b"))]
                   for r in copies.head(MAX_DOCX_ROWS).to_dict("records")], widths=[2.8, 2.8, 9, 1.5, 1.5],
                  total=len(copies))

    figures = frame(frames, "figures", ("unit", "text"))
    if figures is not None:
        doc.add_heading("数据", level=1)
        cols = [c for c in ("unit", "subject", "value", "measure_unit", "is_target", "text") if c in figures]
        add_table(doc, cols, [[unit_name(v) if c == "unit" else v for c, v in zip(cols, row, strict=True)]
                              for row in figures[cols].head(MAX_DOCX_ROWS).itertuples(index=False)],
                  total=len(figures))

    compare = frame(frames, "compare")
    if compare is not None:
        doc.add_heading("与上期比较", level=1)
        add_table(doc, [str(c) for c in compare.columns],
                  [list(r) for r in compare.head(MAX_DOCX_ROWS).astype(object).itertuples(index=False)],
                  total=len(compare))

    docs = frame(frames, "documents", ("source", "status"))
    if docs is not None:
        doc.add_heading("文件", level=1)
        add_table(doc, ["文件", "状态", "原因"],
                  [[r["source"], r["status"], r.get("reason", "")] for r in docs.to_dict("records")],
                  limit=10_000)
    return doc


def _pct(v: Any) -> str:
    try:
        return f"{float(v):.0%}"
    except (TypeError, ValueError):
        return ""


def write_docx(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path) -> None:
    build_docx(frames, meta).save(str(path))
