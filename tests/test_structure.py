"""Structure on real inputs: the seeds (Xining anthology, a web page of three reports, a converted
anthology with 文号 and scoring tables) and anthology volumes written as PDF (reportlab) and DOCX
(python-docx) from real report text, with cover, 序, 目录, running heads and folios."""

from __future__ import annotations

from pathlib import Path

import pytest
from anthology_fixtures import EDITOR, VOLUME, make_anthology_docx, make_anthology_pdf
from conftest import seed

from pipeline.ingest import ingest_file
from pipeline.model import Block, Document
from pipeline.normalize import normalize
from pipeline.structure import structure
from pipeline.structure.sentences import split_sentences
from pipeline.structure.toc import parse_entries
from pipeline.structure.units import canonical_unit, split_unit_author, unit_key


def run(path: Path) -> Document:
    return structure(normalize(ingest_file(path)))


def reports(doc: Document) -> list:
    return [a for a in doc.articles if a.kind != "front"]


def score(doc: Document, expected: list) -> tuple[float, float]:
    got = {a.title.replace(" ", "") for a in reports(doc)}
    want = {e.title.replace(" ", "") for e in expected}
    hit = len(got & want)
    return hit / len(want), hit / max(len(got), 1)


# --- seeds -------------------------------------------------------------------------------------

def test_seed_000_toc_has_all_31_entries_with_title_unit_and_page() -> None:
    doc = run(seed("000"))
    assert len(doc.toc) == 31
    first, second, last = doc.toc[0], doc.toc[1], doc.toc[-1]
    # the first entry is printed together with the preface's byline; the 序 is not an entry
    assert (first.title, first.unit, first.page) == ("建设学习型机关 提高三服务水平", "中共西宁市委办公厅", 1)
    assert (second.title, second.unit, second.page) == ("机关党员先进性教育初探", "市直属机关工委", 7)
    # entries from 24 on are wrapped: "title" then "- unit(page)"
    assert (doc.toc[23].title, doc.toc[23].unit, doc.toc[23].page) == (
        "机关党建工作面临的挑战与对策", "城东区乐家湾镇党委", 164)
    assert (last.title, last.unit, last.page) == ("机关党建要突出抓好党风廉政建设", "城东区纪委", 202)
    pages = [e.page for e in doc.toc]
    assert pages == sorted(pages) and all(e.unit for e in doc.toc)


def test_seed_000_front_matter_and_its_two_articles() -> None:
    doc = run(seed("000"))
    front = [a for a in doc.articles if a.kind == "front"]
    assert {a.title for a in front} >= {"序", "目录"} and doc.articles[0].kind == "front"
    arts = reports(doc)
    assert [(a.title, a.unit, a.page) for a in arts] == [
        ("建设学习型机关 提高三服务水平", "中共西宁市委办公厅", 1), ("机关党员先进性教育初探", "市直属机关工委", 7)]
    assert arts[0].author == "汪彦明 马锐"
    # the preface's text is not in the first article; a warning names the entries not found
    first = [s for s in doc.sentences if s.article_id == arts[0].article_id]
    assert first[0].text == "建设学习型机关 提高三服务水平"
    assert not any("机关、事业单位党建工作是全面推进" in s.text for s in first)
    assert any("29 of 31 TOC entries not found" in w and "城东区纪委" not in w and "(202)" in w
               for w in doc.warnings)


def test_seed_001_web_page_holds_three_reports() -> None:
    doc = run(seed("001"))
    assert [a.title for a in reports(doc)] == [
        "机关党建工作调研报告", "关于建立困难党员帮扶机制工作的调查报告", "关于机关党建的调研报告"]
    assert all(a.kind == "调研报告" for a in reports(doc))
    # web furniture stays in the sentences (gold labels it 'other'), as furniture
    assert any(s.evidence == "furniture" and s.text.startswith("发布时间") for s in doc.sentences)


def test_seed_004_documents_with_their_doc_numbers_and_tables() -> None:
    doc = run(seed("004"))
    arts = {a.doc_number: a for a in reports(doc)}
    assert set(arts) == {"鄞机党〔2008〕2号", "鄞机党〔2008〕3号", "鄞机党〔2008〕9号"}
    assert arts["鄞机党〔2008〕3号"].title == "关于党组织目标管理考核的意见"
    assert arts["鄞机党〔2008〕3号"].unit == "中共宁波市鄞州区直属机关工作委员会"
    assert arts["鄞机党〔2008〕3号"].page == 9 and arts["鄞机党〔2008〕3号"].kind == "意见"
    groups = {e.group for e in doc.toc}
    assert {"一、工委文件", "三、特色党组织创建成果", "四、优秀微型党课"} <= groups
    mini = next(e for e in doc.toc if e.page == 121)
    assert (mini.title, mini.unit, mini.author) == ("敬业、乐业、兴业——谈普通党员干部如何树立职业观", "区信访局", "金琴")
    # each scoring-table row is one sentence of kind table, not split on 。
    rows = [s for s in doc.sentences if s.evidence == "table"]
    assert any(s.text.startswith("项目\t内容和要求") for s in rows)
    assert any(s.text.startswith("组织建设\t7、") and "；" in s.text for s in rows)
    assert not any("\t" in s.text for s in doc.sentences if s.evidence == "")


def test_every_source_character_of_a_seed_is_kept_in_order() -> None:
    """Eval aligns gold text against the sentences: nothing of the body may be lost."""
    import re

    path = seed("004")
    doc = run(path)
    joined = re.sub(r"\s+", "", "".join(s.text for s in doc.sentences))
    source = re.sub(r"\s+", "", path.read_text(encoding="utf-8"))
    assert joined == source


# --- hidden-test-like volumes ----------------------------------------------------------------

def test_pdf_anthology_articles_units_and_printed_pages(tmp_path: Path) -> None:
    expected = make_anthology_pdf(tmp_path / "volume.pdf")
    doc = run(tmp_path / "volume.pdf")
    recall, precision = score(doc, expected)
    assert recall >= 0.95 and precision >= 0.95
    got = {a.title.replace(" ", ""): a for a in reports(doc)}
    for e in expected:
        a = got[e.title.replace(" ", "")]
        assert (a.unit, a.page) == (e.unit, e.page)
    assert [a.kind for a in doc.articles[:3]] == ["front"] * 3  # cover, 序, 目录
    # running heads and folios are out of the text; every body sentence knows its printed page
    assert not any(s.text in (VOLUME, "— 1 —") for s in doc.sentences)
    body = [s for s in doc.sentences if s.article_id in {a.article_id for a in reports(doc)}]
    assert body and all(s.page is not None for s in body)


def test_pdf_pages_found_when_ingest_left_folios_in_the_text(tmp_path: Path) -> None:
    """Another converter's output: running heads and folios are plain paragraphs without pages."""
    expected = make_anthology_pdf(tmp_path / "volume.pdf")
    doc = normalize(ingest_file(tmp_path / "volume.pdf"))
    for b in doc.blocks:
        b.page = None
        if b.kind == "furniture":
            b.kind = "para"
    doc = structure(doc)
    got = {a.title.replace(" ", ""): a for a in reports(doc)}
    assert [got[e.title.replace(" ", "")].page for e in expected] == [e.page for e in expected]
    assert not any(s.text == VOLUME or s.text.startswith("—") for s in doc.sentences)


def test_docx_anthology_articles_units_and_pages_from_the_toc(tmp_path: Path) -> None:
    expected = make_anthology_docx(tmp_path / "volume.docx")
    doc = run(tmp_path / "volume.docx")
    recall, precision = score(doc, expected)
    assert recall >= 0.95 and precision >= 0.95
    assert [(a.unit, a.page) for a in reports(doc)] == [(e.unit, e.page) for e in expected]
    assert all(a.author == "汪彦明 马锐" for a in reports(doc))
    cover = doc.articles[0]
    assert cover.kind == "front" and EDITOR not in {a.unit for a in reports(doc)}
    # DOCX heading styles nest: "一、主要做法" (Heading 2) is the section of the paragraphs under it
    body = [s for s in doc.sentences if s.article_id == reports(doc)[1].article_id and not s.is_heading]
    assert any(s.section == ["一、主要做法"] for s in body)


def test_toc_that_does_not_match_the_body_still_yields_articles_and_a_warning(tmp_path: Path) -> None:
    import docx
    from anthology_fixtures import article_texts

    d = docx.Document()
    d.add_heading("目录", level=1)
    d.add_paragraph("关于不存在文章的调研报告……………………市审计局\t3")
    d.add_paragraph("另一篇找不到的总结……………………市财政局\t9")
    for t, u, paras in article_texts(2)[:2]:
        d.add_heading(t, level=1)
        d.add_paragraph(u)
        for p in paras:
            d.add_paragraph(p)
    d.save(str(tmp_path / "bad.docx"))
    doc = run(tmp_path / "bad.docx")
    assert [a.unit for a in reports(doc)] == ["中共西宁市委办公厅", "市直属机关工委"]
    assert any("关于不存在文章的调研报告" in w and "另一篇找不到的总结" in w for w in doc.warnings)
    assert sum(len(s.text) for s in doc.sentences) > 200  # nothing dropped


# --- pieces ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("lines", "want"), [
    (["标题甲……………市教育局  12"], ("标题甲", "市教育局", "", 12)),
    (["- 2、身边的党课 .....区财政局 郑红平 (124)"], ("身边的党课", "区财政局", "郑红平", 124)),
    (["- 1、2007年工作回顾和2008年要点", "(鄞机党〔2008〕2号) ..... (1)"],
     ("2007年工作回顾和2008年要点", "", "", 1)),
    (["机关党建工作面临的挑战与对策", "- 城东区乐家湾镇党委(164)"], ("机关党建工作面临的挑战与对策", "城东区乐家湾镇党委", "", 164)),
    (["以人为本 做好政府形象代言人 区行政审批办 徐慧娟 178"], ("以人为本 做好政府形象代言人", "区行政审批办", "徐慧娟", 178)),
])
def test_toc_entry_shapes(lines: list[str], want: tuple) -> None:
    [e] = parse_entries(lines)
    assert (e.title, e.unit, e.author, e.page) == want


def test_entries_run_together_by_pdf_layout_are_split() -> None:
    from pipeline.structure.toc import split_run_together

    lines = split_run_together("甲标题........市教育局（1）乙标题........市铁二中（3）")
    assert [(e.title, e.unit, e.page) for e in parse_entries(lines)] == [
        ("甲标题", "市教育局", 1), ("乙标题", "市铁二中", 3)]


def test_units_one_spelling() -> None:
    assert canonical_unit("市直机关工委") == canonical_unit("市直属机关工委") == "市直属机关工委"
    assert canonical_unit("市委办公厅") == "中共西宁市委办公厅"
    assert unit_key("中共城东区直属机关工作委员会") == unit_key("城东区直机关工委")
    assert split_unit_author("区信访局 金 琴") == ("区信访局", "金琴")
    assert split_unit_author("市教育局") == ("市教育局", "")


def test_sentences_respect_quotes_brackets_and_numbers() -> None:
    text = "他说：“要抓落实。”随后（见附件。）增长3.5%。一是加强学习；二是改进作风！"
    assert split_sentences(text) == ["他说：“要抓落实。”", "随后（见附件。）增长3.5%。", "一是加强学习；",
                                     "二是改进作风！"]


def test_bad_input_is_no_crash() -> None:
    doc = Document(doc_id="x", source="x.txt", blocks=[Block("目 录", 0), Block("……(3)", 1), Block("", 2)])
    out = structure(doc)
    assert out.articles and out.status == "ok"
