"""`huibian eval`: alignment, per-label scores, macro-F1, aligned share, κ, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import GOLD

from pipeline.evaluate import evaluate, match_document


def _sentences(doc: str, rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"source": [doc] * len(rows), "idx": range(len(rows)),
                         "text": [t for t, _ in rows], "label": [lab for _, lab in rows]})


def test_alignment_ignores_space_and_width_and_scores_by_hand() -> None:
    pred = _sentences("in/gov2026/北京市.txt", [
        ("一、工作回顾", "other"),
        ("我们完成了任务。", "strength"),
        ("但仍存在问题。", "strength"),  # wrong on purpose
        ("要加强学习，抓好落实！", "measure"),
    ])
    gold = [
        {"doc": "gov2026/北京市", "text": "我们完成了任务。", "label": "strength"},
        {"doc": "gov2026/北京市", "text": "但仍存在问题 。", "label": "gap"},  # extra space
        {"doc": "gov2026/北京市", "text": "要加强学习,抓好落实!", "label": "measure"},  # half-width forms
        {"doc": "gov2026/北京市", "text": "这句话不在文件里出现过的。", "label": "other"},
        {"doc": "gov2026/上海市", "text": "没有这个文件。", "label": "gap"},
    ]
    r = evaluate(gold, pred)
    assert r["aligned"] == 3 and r["aligned_share"] == pytest.approx(0.6)
    per = r["per_label"]
    # strength: tp 1, fp 1 (the gap sentence), fn 0
    assert per["strength"]["precision"] == pytest.approx(0.5) and per["strength"]["recall"] == 1.0
    assert per["gap"]["recall"] == 0.0 and per["measure"]["f1"] == 1.0
    assert per["other"]["recall"] == 0.0  # unaligned counts as wrong
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0 + 1 + 0) / 4, abs=1e-3)
    assert r["confusion"]["gap"] == {"strength": 1, "(unaligned)": 1}


def test_label_covering_most_characters_wins() -> None:
    pred = _sentences("x.txt", [("甲乙丙丁戊己庚", "gap"), ("辛。", "other")])
    r = evaluate([{"doc": "x.txt", "text": "甲乙丙丁戊己庚辛。", "label": "gap"}], pred)
    assert r["per_label"]["gap"]["f1"] == 1.0


def test_document_matching_with_and_without_extension() -> None:
    sources = ["/data/seeds/001_a.txt", "/data/corpus/gov2026/北京市.txt"]
    assert match_document("001_a.txt", sources) == sources[0]
    assert match_document("gov2026/北京市", sources) == sources[1]
    assert match_document("北京", sources) is None


@pytest.mark.skipif(not GOLD.exists(), reason="../shared/gold/dev.jsonl not present")
def test_eval_cli_on_real_gold(sample_run: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "pipeline", "eval", "--gold", str(GOLD), "--pred",
                          str(sample_run), "--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    # every gold document is in the sample corpus, so every gold sentence must align
    assert r["aligned_share"] >= 0.99
    assert set(r["per_label"]) == {"strength", "gap", "cause", "measure", "other"}
    assert 0 < r["macro_f1"] <= 1 and -1 <= r["kappa"] <= 1
    text = subprocess.run([sys.executable, "-m", "pipeline", "eval", "--gold", str(GOLD), "--pred",
                           str(sample_run)], capture_output=True, text=True, timeout=300).stdout
    assert "macro-F1" in text and "confusion" in text and "kappa" in text
