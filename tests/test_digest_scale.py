"""Issue 8 follow-up: the deliverables stay bounded and correct when a season is large.

A real run over the digest test's three reports, its tables then repeated in memory (ids, units and
file names made distinct per copy, as `benchmarks/bench_digest.py --scale` does) to stand in for a
season of many reports; the caps are lowered where a function takes them so the tests stay fast.
Everything written is read back with lxml, openpyxl and zipfile.
"""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from lxml import etree
from lxml import html as lxml_html
from test_digest import QDA, make_inputs

from pipeline.digest import html as digest_html
from pipeline.digest import xlsx as digest_xlsx
from pipeline.digest.common import ROLES, body_sentences, problem_clusters, quotes_per_role, unit_profiles
from pipeline.digest.qdpx import write_qdpx
from pipeline.run import RunConfig, load_frames, run


def _bench_digest():
    """benchmarks/bench_digest.py, whose season scaler these tests also use (one scaler, tested)."""
    spec = importlib.util.spec_from_file_location(
        "bench_digest", Path(__file__).resolve().parent.parent / "benchmarks" / "bench_digest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


repeat_season = _bench_digest().scale_frames


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    base = tmp_path_factory.mktemp("scale")
    run(RunConfig(inputs=[str(make_inputs(base / "in"))], out=base / "out", season="规模"))
    return load_frames(base / "out")


@pytest.fixture(scope="module")
def season(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return repeat_season(frames, 12)


def meta(frames: dict[str, pd.DataFrame]) -> dict[str, object]:
    return {"season": "规模", "ok": len(frames["documents"]), "rejected": 0, "sentences": len(frames["sentences"])}


def test_page_embeds_a_capped_share_of_every_unit_and_all_quotes(season: dict[str, pd.DataFrame]) -> None:
    body = body_sentences(season)
    limit = 600
    coded = body[body["label"].isin(ROLES)]
    assert len(coded) > limit  # the cap bites on coded sentences too
    page = digest_html.render_html(season, meta(season), max_embedded=limit)
    tree = lxml_html.fromstring(page)
    data = json.loads(tree.get_element_by_id("sentences-data").text)
    f = {name: i for i, name in enumerate(data["fields"])}
    rows = data["rows"]
    # quotes ride along over the cap: at most one per unit × role × quote slot
    n_quotes = len(tree.xpath("//blockquote"))
    assert limit <= len(rows) <= limit + n_quotes
    assert data["total"] == len(body)
    assert {r[f["label"]] for r in rows} <= set(ROLES)  # past the cap, "other" goes first
    # every unit keeps a share of the search (round robin over unit × role, not the top of one unit)
    assert {data["units"][r[f["unit"]]] for r in rows} == set(body["unit"])
    # every quote's link opens a sentence the page holds, with that sentence's text
    held = {(data["docs"][r[f["doc"]]][0], r[f["idx"]]): r[f["text"]] for r in rows}
    links = tree.xpath("//blockquote//a[starts-with(@href, '#s-')]")
    assert links
    for a in links:
        key = (a.get("data-doc"), int(a.get("data-idx")))
        assert key in held and held[key] in a.getparent().getparent().text_content()
    # sections and themes are shared lists; each row points into them
    assert all(0 <= r[f["section"]] < len(data["sections"]) for r in rows)
    assert tree.get_element_by_id("search-scope") is not None  # the page says the search is partial
    # each document's rows together and in order, as the context view (neighbouring rows) expects
    docs = [r[f["doc"]] for r in rows]
    runs = [d for i, d in enumerate(docs) if i == 0 or docs[i - 1] != d]
    assert len(runs) == len(set(runs))
    for d in set(docs):
        idx = [r[f["idx"]] for r in rows if r[f["doc"]] == d]
        assert idx == sorted(idx)


def test_small_season_embeds_everything_and_says_nothing(frames: dict[str, pd.DataFrame]) -> None:
    tree = lxml_html.fromstring(digest_html.render_html(frames, meta(frames)))
    data = json.loads(tree.get_element_by_id("sentences-data").text)
    assert len(data["rows"]) == data["total"] == len(body_sentences(frames))
    assert not tree.xpath("//*[@id='search-scope']")


def test_page_grows_slower_than_the_season(frames: dict[str, pd.DataFrame],
                                           season: dict[str, pd.DataFrame]) -> None:
    """12× the sentences with the cap at the small season's size: the page is far from 12× bigger."""
    small = digest_html.render_html(frames, meta(frames))
    cap = len(body_sentences(frames))
    big = digest_html.render_html(season, meta(season), max_embedded=cap)
    assert len(big) < 6 * len(small)
    # heat-map cells carry a class per intensity step, never an inline style per cell
    tree = lxml_html.fromstring(big)
    cells = tree.xpath("//table[contains(@class, 'heat')]//td[contains(@class, 'c')]")
    assert cells and not any(c.get("style") for c in cells)
    assert all(re.fullmatch(r"c h\d+", c.get("class")) for c in cells)


def test_quotes_per_role_shrink_as_units_grow() -> None:
    assert quotes_per_role(10) == 8
    assert quotes_per_role(1000) == 2
    assert quotes_per_role(500) == 4
    assert all(quotes_per_role(n) >= quotes_per_role(n + 50) for n in range(1, 2000, 50))


def test_unit_profiles_take_the_most_confident_quotes(frames: dict[str, pd.DataFrame]) -> None:
    body = body_sentences(frames)
    for u in unit_profiles(frames, per_role=3):
        g = body[body["unit"] == u["unit"]]
        assert u["n"] == len(g)
        for role in ROLES:
            r = g[g["label"] == role]
            quotes = u["roles"][role]["quotes"]
            assert u["roles"][role]["n"] == len(r)
            assert len(quotes) == min(3, len(r))
            # the role's most confident sentences, highest first
            assert [q["confidence"] for q in quotes] == sorted(r["confidence"], reverse=True)[: len(quotes)]
            assert all(q["label"] == role and q["unit"] == u["unit"] for q in quotes)


def test_problem_clusters_capped_breadth_first(season: dict[str, pd.DataFrame]) -> None:
    p = season["problems"]
    if p.empty:
        pytest.skip("the run found no recurring problems")
    full = problem_clusters(season, {})
    capped = problem_clusters(season, {}, max_clusters=3, max_members=4)
    assert len(full) == p["cluster_id"].nunique()
    assert [c["id"] for c in capped] == [c["id"] for c in full[:3]]  # most widespread first
    for c, whole in zip(capped, full, strict=False):
        assert c["n"] == whole["n"] == int((p["cluster_id"] == c["id"]).sum())
        assert c["units"] == whole["units"]
        assert len(c["members"]) == min(4, c["n"])
        units = [m["unit"] for m in c["members"]]
        # one member per unit before any unit's second
        assert len(set(units)) == min(len(units), len(c["units"]))
    order = [(-len(c["units"]), -c["n"], c["id"]) for c in full]
    assert order == sorted(order)


def test_problem_clusters_codes_same_as_group_bys(season: dict[str, pd.DataFrame]) -> None:
    """The numpy path (the analysis' tables) gives exactly what the pandas group-bys give: members'
    values and types, names, units, order; odd tables (missing ids, blank units) take the pandas path."""
    from pipeline.digest import common

    p = season["problems"]
    if p.empty:
        pytest.skip("the run found no recurring problems")
    p = p.assign(unit=p["unit"].where(p.index % 7 != 3, " "))  # blank units: (未识别)
    names = {str(d): f"{d}.txt" for d in p["doc_id"].unique()}
    assert p.index.is_monotonic_increasing and p.index.is_unique and not p["cluster_id"].hasnans  # the fast path
    for caps in ((None, None), (3, 4), (None, 1), (2, None)):
        fast = problem_clusters({"problems": p}, names, *caps)
        slow = common._problem_clusters_pandas(p, names, *caps)
        assert fast == slow and [[list(map(type, m.values())) for m in c["members"]] for c in fast] == \
            [[list(map(type, m.values())) for m in c["members"]] for c in slow], caps
    assert any(m["unit"] == "(未识别)" for c in fast for m in c["members"])
    odd = p.assign(cluster_id=p["cluster_id"].where(p.index % 5 != 0, None))
    assert problem_clusters({"problems": odd}, names) == common._problem_clusters_pandas(odd, names, None, None)


def test_xlsx_same_cells_as_the_chunked_openpyxl_writer(frames: dict[str, pd.DataFrame], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """tables.xlsx (fragments, Arrow-built XML) and the API's export writer (openpyxl, rows prepared 97
    at a time: chunk edges inside every sheet) hold the same cells."""
    from openpyxl import Workbook

    counts = digest_xlsx.write_xlsx(frames, tmp_path / "one.xlsx")
    monkeypatch.setattr(digest_xlsx, "CHUNK", 97)
    wb = Workbook(write_only=True)
    for name, columns in digest_xlsx.SHEETS.items():
        df = frames.get(name)
        if name == "sentences":
            df = digest_xlsx.sentence_rows(df, None, False)
        digest_xlsx.write_sheet(wb, name, df, columns)
    wb.save(str(tmp_path / "chunked.xlsx"))
    a = openpyxl.load_workbook(tmp_path / "one.xlsx", read_only=True)
    b = openpyxl.load_workbook(tmp_path / "chunked.xlsx", read_only=True)
    assert counts["sentences"] > 97
    for name in digest_xlsx.SHEETS:
        rows, other = list(a[name].values), list(b[name].values)
        if name == "sentences":  # tables.xlsx adds the file name as a last column
            rows = [r[:-1] for r in rows]
        assert rows == other, name
        assert len(rows) == counts.get(name, len(rows) - 1) + 1
    header, *body = list(a["sentences"].values)
    idx, text = header.index("idx"), header.index("text")
    assert [r[idx] for r in body] == frames["sentences"]["idx"].tolist()
    assert [r[text] for r in body] == frames["sentences"]["text"].tolist()


def test_qdpx_streamed_project_has_unique_guids_and_is_stable(season: dict[str, pd.DataFrame],
                                                             tmp_path: Path) -> None:
    write_qdpx(season, meta(season), tmp_path / "a.qdpx")
    write_qdpx(season, meta(season), tmp_path / "b.qdpx")
    with zipfile.ZipFile(tmp_path / "a.qdpx") as z:
        qde = z.read("project.qde")
        sources = [n for n in z.namelist() if n.startswith("sources/")]
    with zipfile.ZipFile(tmp_path / "b.qdpx") as z:
        again = z.read("project.qde")
    root = etree.fromstring(qde)
    guids = [e.get("guid") for e in root.iter() if e.get("guid")]
    assert len(guids) == len(set(guids))
    assert all(re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", g) for g in guids)
    assert len(sources) == season["sentences"]["doc_id"].nunique()
    # every reference points at something defined
    refs = {e.get("targetGUID") for e in root.iter(f"{QDA}CodeRef")} | {
        e.get("targetGUID") for e in root.iter(f"{QDA}SourceRef")}
    assert refs <= set(guids)
    # same corpus, same project (up to the creation time)
    stamp = re.compile(rb'creationDateTime="[^"]*"')
    assert stamp.sub(b"", qde) == stamp.sub(b"", again)
