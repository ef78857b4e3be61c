"""Issue 7: the deliverables of `huibian run` open with the libraries users' tools use.

A real run over two real reports plus a small report whose text holds `<script>alert(1)</script>`,
a formula-like line and more; then digest.html (lxml), digest.docx (python-docx), tables.xlsx
(openpyxl) and corpus.qdpx (zipfile + lxml, REFI-QDA structure) are read back and checked against
the run's own tables.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import docx
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from conftest import SAMPLE, seed
from lxml import etree
from lxml import html as lxml_html

from pipeline.digest.common import ROLE_NAMES, ROLES
from pipeline.digest.xlsx import SENTENCE_INTERNAL, SHEETS
from pipeline.run import RunConfig, run

INJECTION = "<script>alert(1)</script>"
REPORT = f"""市统计局2025年工作总结

一、主要成绩

今年以来，我局全面完成了统计调查任务，数据质量明显提高{INJECTION}，得到上级充分肯定。
全年共完成专项调查12项，比上年增长20%。
=SUM(A1:A9)这一公式样式的文字也如实记录，经济普查工作取得显著成效。

二、存在的问题

一是基层统计力量薄弱，专业人员不足的问题仍然比较突出。
二是部分单位统计意识淡薄，数据报送不及时。

三、原因分析

究其原因，主要是基层统计机构编制偏少，培训投入不够。

四、下一步打算

下一步，我们将加强基层统计队伍建设，切实提高数据质量。
"""
QDA = "{urn:QDA-XML:project:1.0}"


def make_inputs(folder: Path) -> Path:
    """Two real reports from the sample season and one report carrying markup and a formula."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(seed("002"), folder)
    shutil.copy(SAMPLE / "gov2026" / "河北省.txt", folder)
    (folder / "市统计局2025年工作总结.txt").write_text(REPORT, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("digest")
    target = base / "out"
    run(RunConfig(inputs=[str(make_inputs(base / "in"))], out=target, season="2025测试"))
    return target


@pytest.fixture(scope="module")
def sentences(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "sentences.parquet")


def content(s: pd.DataFrame) -> pd.DataFrame:
    return s[s["kind"].isin(["body", "heading"])]


def test_every_deliverable_is_written(out: Path) -> None:
    for name in ("digest.html", "digest.docx", "tables.xlsx", "corpus.qdpx"):
        assert (out / name).stat().st_size > 1000, name


# ------------------------------------------------------------------------------------------- HTML

def test_html_is_self_contained(out: Path) -> None:
    tree = lxml_html.fromstring((out / "digest.html").read_text(encoding="utf-8"))
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in ("src", "href", "action", "srcset", "xlink:href", "{http://www.w3.org/1999/xlink}href"):
            v = el.get(attr)
            assert v is None or v.startswith("#") or v.startswith("data:"), (el.tag, attr, v)
    assert not tree.xpath("//link | //iframe | //img[not(starts-with(@src, 'data:'))] | //script[@src]")
    assert tree.xpath("//style") and tree.xpath("//svg"), "CSS and charts must be inline"


def test_html_escapes_report_text(out: Path, sentences: pd.DataFrame) -> None:
    page = (out / "digest.html").read_text(encoding="utf-8")
    assert INJECTION not in page and "alert(1)</" not in page
    tree = lxml_html.fromstring(page)
    scripts = tree.xpath("//script")
    assert [s.get("type") for s in scripts] == ["application/json", None]  # no script from the report
    # it shows as text in a quote of the unit's strengths
    quotes = [q.text_content() for q in tree.xpath("//blockquote")]
    assert any(INJECTION in q for q in quotes)
    # and survives the JSON round trip exactly
    data = json.loads(tree.get_element_by_id("sentences-data").text)
    texts = [r[data["fields"].index("text")] for r in data["rows"]]
    assert any(INJECTION in t for t in texts)
    assert len(data["rows"]) == len(content(sentences))


def test_html_has_overview_units_heatmap_and_source_links(out: Path, sentences: pd.DataFrame) -> None:
    tree = lxml_html.fromstring((out / "digest.html").read_text(encoding="utf-8"))
    for section in ("overview", "heatmap", "units", "search", "documents"):
        assert tree.get_element_by_id(section) is not None
    units = set(content(sentences)["unit"].replace("", "(未识别)"))
    shown = {s.get("data-unit") for s in tree.xpath("//section[@class='unit']")}
    assert shown == units
    # heat map: one table per role plus all roles, a row per unit
    heat = tree.xpath("//table[contains(@class, 'heat')]")
    assert {t.get("data-role") for t in heat} == {"all", *ROLES}
    # every quote links to its source sentence, and the quote is that sentence's text
    by_key = {f"#s-{d}-{i}": t for d, i, t in sentences[["doc_id", "idx", "text"]].itertuples(index=False)}
    links = tree.xpath("//blockquote//a[starts-with(@href, '#s-')]")
    assert links
    for a in links:
        quote = a.getparent().getparent()
        assert by_key[a.get("href")] in quote.text_content()


# ------------------------------------------------------------------------------------------- DOCX

def test_docx_has_heading_styles_tables_and_east_asian_fonts(out: Path, sentences: pd.DataFrame) -> None:
    d = docx.Document(str(out / "digest.docx"))
    by_style: dict[str, list[str]] = {}
    for p in d.paragraphs:
        by_style.setdefault(p.style.name, []).append(p.text)
    assert "各单位" in by_style["Heading 1"]
    units = set(content(sentences)["unit"].replace("", "(未识别)"))
    assert units <= set(by_style["Heading 2"])
    assert any(t.startswith(ROLE_NAMES["strength"]) for t in by_style["Heading 3"])
    # the unit × role matrix as a real table: header then a row per unit
    matrix = d.tables[0]
    assert [c.text for c in matrix.rows[0].cells][:3] == ["单位", ROLE_NAMES["strength"], ROLE_NAMES["gap"]]
    assert {r.cells[0].text for r in matrix.rows[1:]} == units
    for name in ("Normal", "Heading 1", "Heading 2"):
        fonts = d.styles[name].element.rPr.rFonts
        assert fonts.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia")
    assert any(INJECTION in p.text for p in d.paragraphs)  # report text kept as text


# ------------------------------------------------------------------------------------------- XLSX

def test_xlsx_one_sheet_per_table_one_row_per_sentence(out: Path, sentences: pd.DataFrame) -> None:
    wb = openpyxl.load_workbook(out / "tables.xlsx")
    assert {"sentences", "matrix", "problems", "copies", "figures", "keywords", "documents",
            "articles"} <= set(wb.sheetnames)
    ws = wb["sentences"]
    assert ws.max_row == len(sentences) + 1
    # streaming readers (openpyxl read-only, as pandas uses) see the size too
    assert openpyxl.load_workbook(out / "tables.xlsx", read_only=True)["sentences"].max_row == len(sentences) + 1
    assert len(pd.read_excel(out / "tables.xlsx", sheet_name="sentences")) == len(sentences)
    header = [c.value for c in ws[1]]
    # the contract's columns first, in its order; pipeline-internal ones (token lists, offsets) left out
    assert header[: len(SHEETS["sentences"])] == SHEETS["sentences"]
    assert not set(header) & SENTENCE_INTERNAL and {"kind", "file"} <= set(header)
    assert {"tokens", "start"} <= set(sentences.columns)  # (they were there to leave out)
    files = [c.value for c in ws[openpyxl.utils.get_column_letter(header.index("file") + 1)][1:]]
    assert files == [Path(p).name for p in sentences["source"]]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{len(sentences) + 1}"
    text_col = openpyxl.utils.get_column_letter(header.index("text") + 1)
    assert ws.column_dimensions[text_col].width >= 40
    # Chinese text comes back as written, row by row
    texts = [c.value for c in ws[text_col][1:]]
    assert texts == sentences["text"].tolist()
    # a line starting with '=' is text, not a formula
    formula_like = [c for c in ws[text_col][1:] if str(c.value).startswith("=SUM")]
    assert formula_like and all(c.data_type == "s" for c in formula_like)
    for name in ("matrix", "documents"):
        df = pd.read_parquet(out / f"{name}.parquet") if name != "documents" else pd.read_csv(
            out / "documents.csv")
        assert wb[name].max_row == len(df) + 1


def test_xlsx_survives_control_characters_and_huge_cells(out: Path, tmp_path: Path) -> None:
    from pipeline.digest.xlsx import CELL_LIMIT, write_xlsx
    from pipeline.run import load_frames

    frames = load_frames(out)
    s = frames["sentences"].copy()
    s.loc[0, "text"] = "控制\x01字符\x1f"
    s.loc[1, "text"] = "长" * 40_000
    frames["sentences"] = s
    write_xlsx(frames, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["sentences"]
    col = [c.value for c in ws[1]].index("text") + 1
    assert ws.cell(2, col).value == "控制字符"
    assert len(ws.cell(3, col).value) == CELL_LIMIT


# ------------------------------------------------------------------------------------------- QDPX

def test_qdpx_is_a_refi_qda_project_coded_at_sentence_offsets(out: Path, sentences: pd.DataFrame) -> None:
    with zipfile.ZipFile(out / "corpus.qdpx") as z:
        root = etree.fromstring(z.read("project.qde"))
        files = {n: z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("sources/")}
    assert root.tag == f"{QDA}Project" and root.get("name")
    assert [c.tag for c in root] == [f"{QDA}{t}" for t in ("Users", "CodeBook", "Cases", "Sources")]
    codes = {c.get("guid"): c.get("name") for c in root.iter(f"{QDA}Code")}
    assert {ROLE_NAMES[r] for r in ROLES} <= set(codes.values())
    docs = pd.read_csv(out / "documents.csv")
    text_sources = root.findall(f"{QDA}Sources/{QDA}TextSource")
    assert len(text_sources) == int((docs["status"] == "ok").sum())
    n_checked = 0
    for src in text_sources:
        path = src.get("plainTextPath")
        assert path.startswith("internal://")
        text = files["sources/" + path.removeprefix("internal://")]
        doc_sents = sentences[sentences["doc_id"] == sentences["doc_id"][
            sentences["source"].str.endswith(src.get("name"))].iloc[0]].sort_values("idx")
        assert text == "\n".join(doc_sents["text"])  # the source text is Document.text
        by_span = {(int(a), int(b)): (t, lab) for a, b, t, lab in
                   doc_sents[["start", "end", "text", "label"]].itertuples(index=False)}
        for sel in src.findall(f"{QDA}PlainTextSelection"):
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            t, label = by_span[(start, end)]
            assert text[start:end] == t
            refs = [codes[r.get("targetGUID")] for r in sel.iter(f"{QDA}CodeRef")]
            assert all(r in codes.values() for r in refs)
            if label in ROLES:
                assert ROLE_NAMES[label] in refs
            n_checked += 1
    coded = sentences[sentences["label"].isin(ROLES)]
    assert n_checked >= len(coded) > 0


# ------------------------------------------------------------------------------------ bad input

def test_deliverables_written_when_every_input_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "损坏.docx").write_bytes(b"PK\x03\x04 not really a zip")
    run(RunConfig(inputs=[str(folder)], out=tmp_path / "out"))
    out = tmp_path / "out"
    tree = lxml_html.fromstring((out / "digest.html").read_text(encoding="utf-8"))
    assert "损坏.docx" in tree.get_element_by_id("documents").text_content()
    assert docx.Document(str(out / "digest.docx")).paragraphs
    assert openpyxl.load_workbook(out / "tables.xlsx")["sentences"].max_row == 1
    with zipfile.ZipFile(out / "corpus.qdpx") as z:
        assert etree.fromstring(z.read("project.qde")).find(f"{QDA}Sources") is not None


# ----------------------------------------------------------------------------------------- charts

def test_charts_are_svg_with_every_cell_labelled(out: Path) -> None:
    """The charts are hand-written SVG (no matplotlib): well-formed, one cell per value with the value
    printed in it, every row and column label as text, colours on matplotlib's ramp."""
    from matplotlib import colormaps

    from pipeline.digest import charts
    from pipeline.digest.common import role_pivot
    from pipeline.run import load_frames

    pivot = role_pivot(load_frames(out))
    svg = charts.role_share_chart(pivot)
    assert svg.startswith("<svg")
    root = etree.fromstring(svg.encode())
    ns = {"s": "http://www.w3.org/2000/svg"}
    texts = [t.text for t in root.iterfind(".//s:text", ns)]
    shares = pivot.div(pivot.sum(axis=1).replace(0, 1), axis=0)
    assert set(map(str, pivot.index)) <= set(texts) and ROLE_NAMES["gap"] in texts
    cells = root.findall(".//s:g/s:rect", ns)
    assert len(cells) == shares.size
    values = [t.text for t in root.iterfind(".//s:g/s:text", ns)]
    assert values == [f"{v:.0%}" for v in shares.to_numpy().ravel()]
    top = shares.to_numpy().max()
    want = colormaps["Reds"](shares.to_numpy().ravel() / top)
    assert [c.get("fill") for c in cells] == ["#" + "".join(f"{round(x * 255):02x}" for x in rgba[:3]) for rgba in want]
    assert charts.heatmap_svg(pivot.iloc[:0], "empty") == ""


def test_season_tables_reach_html_and_xlsx(out: Path) -> None:
    """Whatever season tables the run made (problems, figures, copies, keywords) are in the page and
    the workbook, row for row."""
    from pipeline.digest.html import MAX_TABLE_ROWS

    tree = lxml_html.fromstring((out / "digest.html").read_text(encoding="utf-8"))
    wb = openpyxl.load_workbook(out / "tables.xlsx", read_only=True)
    present = 0
    for name in ("problems", "figures", "copies", "keywords", "matrix"):
        path = out / f"{name}.parquet"
        df = pd.read_parquet(path) if path.exists() else pd.DataFrame()
        assert wb[name].max_row == len(df) + 1, name
        present += bool(len(df))
        if name == "problems" and len(df):
            clusters = tree.xpath("//section[@id='problems']//details")
            assert len(clusters) == df["cluster_id"].nunique()
            assert len(tree.xpath("//section[@id='problems']//tr[@data-unit]")) == len(df)
        if name == "figures" and len(df):
            rows = tree.xpath("//section[@id='figures']//tr[@data-unit]")
            assert len(rows) == min(len(df), MAX_TABLE_ROWS)
    assert present >= 2  # the matrix and at least one more season table were produced and checked


# ------------------------------------------------------------------ per-file parts (issue 8)

def _parts(frames: dict[str, pd.DataFrame]) -> list[dict[str, object]]:
    """The parts a run passes: each file's digest parts plus its sentences as an Arrow table."""
    import pyarrow as pa

    from pipeline.digest import document_parts
    from pipeline.season import docs_from_frames

    return [{**document_parts(d), "sentences": pa.Table.from_pandas(d["sentences"], preserve_index=False)}
            for d in docs_from_frames(frames)]


def _meta(frames: dict[str, pd.DataFrame]) -> dict[str, object]:
    return {"season": "部件", "ok": len(frames["documents"]), "rejected": 0, "sentences": len(frames["sentences"])}


def test_page_and_document_from_parts_need_no_sentences_table(out: Path) -> None:
    """From per-file parts (no frames["sentences"]) the page and the Word document are those the whole
    frames give; a file whose digest part is missing (its part failed) is read from its sentences."""
    from pipeline.digest.docx import build_docx
    from pipeline.digest.html import render_html
    from pipeline.run import load_frames

    frames = load_frames(out)
    parts = _parts(frames)
    assert len(parts) == frames["sentences"]["doc_id"].nunique() >= 3
    small = {k: v for k, v in frames.items() if k != "sentences"}
    page = render_html(small, _meta(frames), parts=parts)
    assert page == render_html(frames, _meta(frames))
    assert INJECTION not in page and "基层统计力量薄弱" in page
    broken = [dict(p) for p in parts]
    del broken[0]["body"]
    assert render_html(small, _meta(frames), parts=broken) == page
    a = build_docx(small, _meta(frames), parts).element
    b = build_docx(frames, _meta(frames)).element
    assert etree.tostring(a) == etree.tostring(b)
    assert any(INJECTION in t.text for t in a.iter("{*}t") if t.text)


def test_document_parts_are_small_deterministic_and_picklable(out: Path) -> None:
    import pickle

    from pipeline.digest import document_parts
    from pipeline.digest.common import EMBED_RANK, MAX_QUOTES, QUOTE_COLUMNS, _unpack_shown
    from pipeline.run import load_frames
    from pipeline.season import docs_from_frames

    docs = docs_from_frames(load_frames(out))
    for d in docs:
        part = document_parts(d)["body"]
        body = pickle.dumps(part)
        again = pickle.dumps(document_parts({k: v.copy() for k, v in d.items()})["body"])
        assert body == again
        # a few bytes per sentence: bit masks, coded rows' unit/role/confidence, a few quote candidates
        light = pickle.dumps({k: v for k, v in part.items() if k != "shown_columns"})
        assert len(light) < 2048 + 8 * len(d["sentences"]), (len(light), len(d["sentences"]))
        # plus the columns of the rows a big season's page may show: at most EMBED_RANK (and the quote
        # candidates) per unit × role, compressed below their text's size, equal to the file's table
        held = _unpack_shown(part["shown_columns"])
        rows = np.flatnonzero(np.unpackbits(part["coded"], count=part["n"]))[part["shown"].astype(np.int64)]
        assert len(rows) <= (EMBED_RANK + MAX_QUOTES) * 4 * len(part["units"])
        table = pa.Table.from_pandas(d["sentences"], preserve_index=False).take(pa.array(rows))
        for c in QUOTE_COLUMNS:
            want = table.column(c).to_pylist()
            assert held[c] == [None if isinstance(v, float) and v != v else v for v in want], c
        text_bytes = sum(len(t.encode()) for t in held["text"])
        assert len(part["shown_columns"][2]) < 512 + text_bytes


class _Counting(Mapping[str, object]):
    """A file's parts that count how often its sentences table is opened."""

    opened = 0

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    def __getitem__(self, key: str) -> object:
        if key == "sentences":
            _Counting.opened += 1
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def test_page_rows_held_in_parts_need_no_sentences_table(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the parts hold every row a capped page shows, no file's sentences are opened, and the page
    is the one the files' tables give (the parts without their held rows); when they do not (a larger
    cap), the missing rows come from the tables and the page is again the same. Both search sets are
    the season-wide rule's."""
    from pipeline.digest import common
    from pipeline.digest.common import body_sentences, quotes_per_role
    from pipeline.digest.html import render_html
    from pipeline.run import load_frames

    monkeypatch.setattr(common, "EMBED_RANK", 3)  # few held rows: both paths on a small season
    season = _season(load_frames(out), 7)
    body = body_sentences(season)
    coded = body[body["label"].isin(ROLES)]
    parts = _parts(season)
    small = {k: v for k, v in season.items() if k != "sentences"}
    bare = [{**p, "body": {k: v for k, v in p["body"].items() if not k.startswith("shown")}} for p in parts]
    quoted = {q for v in _old_quotes(body, quotes_per_role(body["unit"].nunique())).values() for q in v}
    groups = coded.groupby(["unit", "label"]).ngroups
    for limit, held in ((2 * groups, True), (len(coded) // 2, False)):
        _Counting.opened = 0
        page = render_html(small, _meta(season), max_embedded=limit, parts=[_Counting(p) for p in parts])
        assert (_Counting.opened == 0) == held, (limit, _Counting.opened)
        assert page == render_html(small, _meta(season), max_embedded=limit, parts=bare)
        data = json.loads(lxml_html.fromstring(page).get_element_by_id("sentences-data").text)
        f = {name: i for i, name in enumerate(data["fields"])}
        assert [(data["docs"][r[f["doc"]]][0], r[f["idx"]]) for r in data["rows"]] == \
            _old_search(body, quoted, limit)


def _season(frames: dict[str, pd.DataFrame], k: int) -> dict[str, pd.DataFrame]:
    """k copies of the run (ids and units distinct per copy except every third copy, which shares its
    units with copy 0 so units span files), confidences coarsened to one decimal so that ties across
    files and within units decide the selections (copy 2's then divided by 3: off the 1e-4 grid)."""
    out: dict[str, pd.DataFrame] = {}
    for name, df in frames.items():
        copies = []
        for i in range(k):
            c = df.copy()
            for col in ("doc_id", "article_id", "source"):
                if col in c.columns:
                    c[col] = c[col].astype(str) + f"~{i}"
            if "unit" in c.columns and i % 3:
                c["unit"] = c["unit"].astype(str) + f"~{i}"
            if name == "sentences":
                c["confidence"] = (c["confidence"] * 10).round() / 10
                if i == 2:  # one copy's confidences not on the tagger's 1e-4 grid (kept as floats)
                    c["confidence"] = c["confidence"] / 3
            copies.append(c)
        out[name] = pd.concat(copies, ignore_index=True)
    out.pop("matrix", None)  # the role table then comes from the parts' counts
    return out


def _old_quotes(body: pd.DataFrame, per_role: int) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """The season-wide rule on the whole table: most confident first, then lower idx, then row order."""
    coded = body[body["label"].isin(ROLES)].sort_values(["confidence", "idx"], ascending=[False, True],
                                                       kind="stable")
    top = coded.groupby(["unit", "label"], sort=False).head(per_role)
    out: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for d, i, u, lab in top[["doc_id", "idx", "unit", "label"]].itertuples(index=False):
        out.setdefault((u, lab), []).append((d, int(i)))
    return out


def _old_search(body: pd.DataFrame, quoted: set[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The page's search rows by the season-wide rule: coded rows by rank within unit × role (then
    confidence, then row order) up to limit, plus every quote, in season order."""
    coded = body[body["label"].isin(ROLES)]
    order = coded.sort_values("confidence", ascending=False, kind="stable")
    rank = order.groupby(["unit", "label"], sort=False).cumcount()
    keep = set(rank.sort_values(kind="stable").index[:limit])
    return [(d, int(i)) for j, d, i in zip(coded.index, coded["doc_id"], coded["idx"], strict=True)
            if j in keep or (d, int(i)) in quoted]


def test_selections_from_parts_are_the_season_wide_ones(out: Path) -> None:
    """Quotes (best of the files' bests) and the capped search set computed from per-file parts equal
    the season-wide rule applied to the whole sentences table, ties included; counts too."""
    from pipeline.digest.common import body_sentences, quotes_per_role, unit_profiles
    from pipeline.digest.html import render_html
    from pipeline.run import load_frames

    season = _season(load_frames(out), 7)
    body = body_sentences(season)
    parts = _parts(season)
    small = {k: v for k, v in season.items() if k != "sentences"}
    profiles = unit_profiles(small, per_role=3, parts=parts)
    assert {u["unit"] for u in profiles} == set(body["unit"])
    want = _old_quotes(body, 3)
    for u in profiles:
        g = body[body["unit"] == u["unit"]]
        assert u["n"] == len(g)
        for role in ROLES:
            got = [(q["doc_id"], q["idx"]) for q in u["roles"][role]["quotes"]]
            assert got == want.get((u["unit"], role), []), (u["unit"], role)
            assert u["roles"][role]["n"] == int((g["label"] == role).sum())
    assert sum(len(v) for v in want.values()) > len(want)  # several quotes per unit × role were ranked

    per_role = quotes_per_role(body["unit"].nunique())
    quoted = {q for v in _old_quotes(body, per_role).values() for q in v}
    limit = len(body[body["label"].isin(ROLES)]) // 3
    tree = lxml_html.fromstring(render_html(small, _meta(season), max_embedded=limit, parts=parts))
    data = json.loads(tree.get_element_by_id("sentences-data").text)
    f = {name: i for i, name in enumerate(data["fields"])}
    rows = [(data["docs"][r[f["doc"]]][0], r[f["idx"]]) for r in data["rows"]]
    assert rows == _old_search(body, quoted, limit)
    assert data["total"] == len(body)
    # the role table without a matrix comes from the parts' counts
    first = tree.xpath("//section[@id='overview']//tr[@data-unit]")[0]
    unit = first.get("data-unit")
    counts = [int(td.text) for td in first.xpath("./td[@class='n']")]
    g = body[body["unit"] == unit]
    assert counts == [int((g["label"] == r).sum()) for r in (*ROLES, "other")]
