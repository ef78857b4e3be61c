"""The tagger on practice articles (经验材料): claim headings, practices described without 了,
background statements and a weakness; the shared heading-marker table; the seed annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import REPO, process_text

from pipeline.evaluate import evaluate, load_gold
from pipeline.structure.headings import MARKERS, heading_info
from pipeline.tag import features

ANNOTATIONS = REPO / "corpus" / "annotations" / "seeds_practice.jsonl"

# A practice article in the style of the Xining anthology (written for this test, not a seed):
# claim headings, practices in the present tense, one background sentence, one weakness.
PRACTICE = """加强学习型党组织建设 促进财政工作上台阶
市财政局机关党支部
近年来，局机关党支部把建设学习型党组织作为机关党建的重要抓手，取得了较好成效。
一、健全学习制度，不断增强学习的自觉性
机关党建是一个大概念，涉及思想、组织、作风和制度各个方面。
受人手少、任务重的影响，支部开展集体活动难度较大，“三会一课”制度坚持不够经常。
我们始终坚持集中学习与个人自学相结合，注重学习效果。
在学习制度上，支部把中心组学习和“三会一课”有机结合，建立“月讲堂”学习制度。
认真制定年度学习计划。
每季度印发一次学习安排，每月组织一次专题辅导。
二、创新活动载体，增强支部的凝聚力
支部组织党员开展“岗位建功”活动，评选“党员示范岗”12个。
坚持每月开展一次主题党日活动。
"""

PRACTICES = [
    "我们始终坚持集中学习与个人自学相结合，注重学习效果。",
    "在学习制度上，支部把中心组学习和“三会一课”有机结合，建立“月讲堂”学习制度。",
    "认真制定年度学习计划。",
    "每季度印发一次学习安排，每月组织一次专题辅导。",
    "支部组织党员开展“岗位建功”活动，评选“党员示范岗”12个。",
    "坚持每月开展一次主题党日活动。",
]


def _tag(tmp_path: Path, name: str, text: str) -> dict[str, object]:
    doc = process_text(tmp_path, name, text)
    return {s.text.strip(): s for s in doc.sentences}


def test_practice_article_practices_are_strength_background_other_weakness_gap(tmp_path: Path) -> None:
    s = _tag(tmp_path, "practice.txt", PRACTICE)
    for text in PRACTICES:
        assert text in s, f"sentence not found: {text}"
        assert s[text].label == "strength", (text, s[text].label, s[text].evidence)
    # a claim heading of a practice article carries its claim (GUIDE rule 2)
    assert s["一、健全学习制度，不断增强学习的自觉性"].label == "strength"
    assert s["机关党建是一个大概念，涉及思想、组织、作风和制度各个方面。"].label == "other"
    weak = s["受人手少、任务重的影响，支部开展集体活动难度较大，“三会一课”制度坚持不够经常。"]
    assert weak.label == "gap", weak.evidence
    assert s["市财政局机关党支部"].label == "other"  # byline


def test_practice_part_that_demands_is_measure(tmp_path: Path) -> None:
    """Same heading shape, but the body demands (要…/必须…): rule 3 makes the part a plan."""
    text = PRACTICE.split("二、")[0] + """二、创新活动载体，增强支部的凝聚力
要把主题党日活动作为支部工作的重要载体，每月至少开展一次。
必须严格落实“三会一课”制度，防止流于形式。
要建立党员积分管理办法，年底进行考评。
要加强对支部书记的培训，提高抓党建的能力。
"""
    s = _tag(tmp_path, "plan.txt", text)
    assert s["要建立党员积分管理办法，年底进行考评。"].label == "measure"
    assert s["必须严格落实“三会一课”制度，防止流于形式。"].label == "measure"
    assert s["认真制定年度学习计划。"].label == "strength"  # the first part stays a practice


def test_tagger_and_structure_share_one_heading_marker_table() -> None:
    shared = {name: pat for name, pat in MARKERS}
    for name, pat in features._HEAD_MARK:
        assert pat is shared[name]
    assert features._SHI is shared["shi"]
    # a year after 、 is a heading; a list of numerals is not
    info = heading_info("一、2025年工作回顾")
    assert info is not None and info.marker == "cn"
    assert heading_info("一、二、三产业协同发展，结构持续优化。") is None
    assert heading_info("一、一年接着一年干") is not None


def test_seed_annotations_follow_the_guide_format_and_align_to_the_sample_run(sample_run: Path) -> None:
    rows = [json.loads(line) for line in ANNOTATIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 500
    assert {r["label"] for r in rows} <= {"strength", "gap", "cause", "measure", "other"}
    assert {r["doc"] for r in rows} == {"000_6bcdd7718a0dda87.txt", "002_256430e5a9cb6b24.txt",
                                        "003_b48596a779bef44c.txt"}
    sent = pd.read_parquet(sample_run / "sentences.parquet")
    for doc, group in pd.DataFrame(rows).groupby("doc"):
        texts = set(sent[sent["source"].str.endswith(doc)]["text"])
        missing = [t for t in group["text"] if t not in texts]
        assert not missing, (doc, missing[:3])  # every line is a sentence exactly as the run cuts it
    r = evaluate(load_gold(ANNOTATIONS), sent)
    assert r["aligned_share"] == 1.0
