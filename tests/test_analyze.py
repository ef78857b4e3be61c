"""Cross-unit analysis (issue 6) on real reports: problem groups against a hand grouping, copies
in seed 001, figures against a hand list, keywords, KWIC and season compare."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED, seed

from pipeline.analyze import analyze
from pipeline.analyze.compare import compare_seasons
from pipeline.analyze.copies import find_copies
from pipeline.analyze.figures import extract_figures
from pipeline.analyze.keywords import distinctive_words
from pipeline.analyze.kwic import _width, format_kwic, kwic
from pipeline.analyze.problems import cluster_texts, pairwise_scores, split_items
from pipeline.cli import main
from pipeline.run import process_path
from pipeline.tables import to_frames

DATA = Path(__file__).parent / "data"
GOV = SHARED / "corpus" / "gov2026"


def _sentences(*paths: Path) -> pd.DataFrame:
    return to_frames([process_path(p, str(p)) for p in paths])["sentences"]


@pytest.fixture(scope="module")
def gov3() -> pd.DataFrame:
    return _sentences(GOV / "内蒙古自治区.txt", GOV / "安徽省.txt", GOV / "山东省.txt")


@pytest.fixture(scope="module")
def seed001() -> pd.DataFrame:
    """Seed 001 with its three reports as articles (split on its "一 : / 二 : / 三 :" lines)."""
    s = _sentences(seed("001"))
    part = s["text"].str.match(r"^[一二三] : ").cumsum()
    return s.assign(article_id=part.map(lambda k: f"001-{k}"))


def test_problem_groups_match_hand_grouping() -> None:
    hand = [json.loads(line) for line in (DATA / "problem_groups.jsonl").read_text("utf-8").splitlines()]
    gold = pd.factorize(pd.Series([h["group"] for h in hand]))[0]
    pred = cluster_texts([h["text"] for h in hand])
    precision, recall = pairwise_scores(pred, gold)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    # the number of groups comes from the data, and is close to the hand count
    assert abs(len(set(pred)) - len(set(gold))) <= 6


def test_gap_sentence_split_into_problems() -> None:
    text = ("在肯定成绩的同时，我们也清醒看到，发展还面临不少困难和挑战。主要是：经济回升向好的基础还不稳固，"
            "内需动能不足，消费场景供需适配性不强，有效投资空间有待拓展。")
    items = split_items(text, "gap")
    assert "内需动能不足" in items and "有效投资空间有待拓展" in items
    assert not any("清醒" in i or i.startswith("主要") for i in items)


def test_recurring_problems_span_units(gov3: pd.DataFrame) -> None:
    p = analyze({"sentences": gov3})["problems"]
    assert {"cluster_id", "cluster_name", "label", "unit", "doc_id", "article_id", "text", "page"} <= set(p)
    assert len(p) > 0
    assert (p.groupby("cluster_id")["unit"].nunique() >= 2).all()


def test_seed001_first_and_third_report_are_copies(seed001: pd.DataFrame) -> None:
    c = find_copies(seed001)
    pairs = {tuple(sorted(x)) for x in zip(c["article_id_a"], c["article_id_b"], strict=True)}
    assert ("001-1", "001-3") in pairs
    assert not any("001-2" in p for p in pairs)  # the 帮扶机制 report is not a copy
    row = c[(c["article_id_a"] == "001-1") & (c["article_id_b"] == "001-3")].iloc[0]
    assert row["share_a"] > 0.4 and 0 < row["share_b"] < row["share_a"]  # report 3 is longer


def test_unrelated_reports_not_flagged(gov3: pd.DataFrame) -> None:
    # three government reports share stock phrases (习近平新时代中国特色社会主义思想…) but no passage
    assert find_copies(gov3).empty


def test_figures_against_hand_list() -> None:
    hand = [json.loads(line) for line in (DATA / "figures_hand.jsonl").read_text("utf-8").splitlines()]
    found: dict[str, list[dict]] = {}
    for doc, line in (("内蒙古自治区", 21), ("内蒙古自治区", 22), ("云南省", 68)):
        para = (GOV / f"{doc}.txt").read_text("utf-8").splitlines()[line - 1]
        for sent in re.findall(r"[^。]+。?", para):
            found.setdefault(doc, []).extend(extract_figures(sent))
    hits = 0
    for h in hand:
        ok = [f for f in found[h["doc"]] if abs(f["value"] - h["value"]) < 1e-9
              and (h["subject"] in f["subject"] or (f["subject"] and f["subject"] in h["subject"]))]
        hits += bool(ok)
        if ok and h.get("is_target"):
            assert ok[0]["is_target"], h
    assert hits / len(hand) >= 0.9, hits


def test_figure_value_and_unit_as_written() -> None:
    f = extract_figures("经济总量达到3.2万亿元，发展党员56名，举办培训班84期次，新能源装机超1.7亿千瓦。")
    got = [(x["subject"], x["value"], x["measure_unit"]) for x in f]
    assert got == [("经济总量", 3.2, "万亿元"), ("发展党员", 56.0, "名"), ("举办培训班", 84.0, "期次"),
                   ("新能源装机", 1.7, "亿千瓦")]
    assert extract_figures("2025年是关键一年。") == []  # a year is not a figure


def test_keywords_are_distinctive(gov3: pd.DataFrame) -> None:
    k = distinctive_words(gov3)
    assert list(k.columns[:3]) == ["unit", "word", "score"]
    nmg = k[k["unit"] == "内蒙古自治区"]["word"].tolist()
    assert "稀土" in nmg[:15]
    assert not set(k["word"]) & {"的", "和", "工作", "我们"}
    assert (k.groupby("unit")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_kwic_lines_aligned(gov3: pd.DataFrame) -> None:
    lines = kwic(gov3, "稀土", width=8)
    assert len(lines) >= 5 and (lines["unit"] == "内蒙古自治区").all()
    assert all(len(x) <= 8 for x in lines["left"])
    text = format_kwic(lines, 8).splitlines()
    # the keyword sits in the same display column on every line (CJK characters are two wide)
    assert len({_width(line[: line.index("【稀土】")]) for line in text}) == 1


def test_compare_seasons(gov3: pd.DataFrame) -> None:
    old = gov3[gov3["unit"] == "安徽省"]
    new = old.copy()
    gap = new.index[new["text"].str.contains("内需动能不足")][0]
    # next season: the demand problem reworded, the corruption clause dropped, a new problem added
    new.loc[gap, "text"] = "主要是：国内需求动力依然不足，消费场景供需适配性不强，有效投资空间有待拓展。"
    for i in new.index[new["text"].str.contains("腐败问题仍有发生")]:
        new.loc[i, "text"] = "一些政府工作人员市场化思维、国际化视野、专业化能力有待提升。"
    extra = new.loc[[gap]].assign(idx=10_000, text="人工智能产业人才储备明显不足，算力供给短板突出。")
    c = compare_seasons(old, pd.concat([new, extra]))
    status = dict(zip(c["text_new"].where(c["text_new"] != "", c["text_old"]), c["status"], strict=True))
    assert status["国内需求动力依然不足"] == "persisting"
    assert status["部分领域腐败问题仍有发生"] == "resolved"
    assert any(t.startswith("人工智能产业人才储备") and s == "new" for t, s in status.items())


def test_cli_kwic_and_compare(sample_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("matrix", "keywords", "problems", "copies", "figures"):
        assert (sample_run / f"{name}.parquet").exists(), name
    assert main(["kwic", "党员", str(sample_run), "--limit", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and all("【党员】" in line for line in out)
    assert main(["compare", str(sample_run), str(sample_run), "--out", str(tmp_path)]) == 0
    c = pd.read_parquet(tmp_path / "compare.parquet")
    assert set(c["status"]) == {"persisting"}  # a season compared with itself
    assert main(["kwic", "党员", str(tmp_path / "missing")]) == 2
