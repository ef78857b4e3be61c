"""The role tagger on the guide's own examples, themes, corrections across reruns, train
reproducibility, calibration of the shipped model and eval's κ / confusion output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import GOLD, SAMPLE, process_text

from pipeline.cli import main
from pipeline.ingest import ingest_file
from pipeline.run import STAGES, RunConfig, RunError, run
from pipeline.tag import theme_of
from pipeline.tag.corrections import apply_corrections, sentence_key
from pipeline.tag.learner import MODEL_PATH, load_model

# A short research report written the way the guide's examples are (GUIDE.md "Deciding").
REPORT = """关于机关党建工作的调研报告

一、机关党建的基本现状
第一，组织体系基本健全。
各支部都配备了支部书记，有的还设置了组织委员和宣传委员。
二、机关党建的工作差距
第一，领导职能行使不够全面。
有的支部书记连“三会一课”都不能坚持。
三、机关党建工作的问题成因
第一，支部领导重视不够到位。
部分支部书记认为党建工作是软指标。
四、完善机关党建工作的对策
（二）抓好机关党建工作的主攻重点。
要严格落实“三会一课”制度，切实加强党员教育管理。
"""

SUMMARY = """市直机关党建工作总结

一、坚持理论武装，加强思想建设
2004年，机关各级党组织深入开展了学习活动，举办培训班84期次。
虽然取得了一定成绩，但仍然存在一些问题。
究其原因，主要是机关党务干部多为兼职，精力有限。
在这一年的工作中，我们有以下三点体会：
1、必须紧紧围绕大局开展机关党建工作。
"""


def _tag_text(tmp_path: Path, name: str, text: str) -> list:
    doc = process_text(tmp_path, name, text)
    return doc.sentences


def _label(sents: list, text: str) -> str:
    hits = [s for s in sents if s.text.strip() == text]
    assert hits, f"sentence not found: {text}"
    return hits[0].label


def test_claim_headings_carry_their_claim_and_bare_headings_are_other(tmp_path: Path) -> None:
    s = _tag_text(tmp_path, "report.txt", REPORT)
    assert _label(s, "第一，组织体系基本健全。") == "strength"
    assert _label(s, "第一，领导职能行使不够全面。") == "gap"
    assert _label(s, "第一，支部领导重视不够到位。") == "cause"  # inside a causes section (rule 1)
    assert _label(s, "（二）抓好机关党建工作的主攻重点。") == "measure"
    assert _label(s, "三、机关党建工作的问题成因") == "other"
    assert _label(s, "要严格落实“三会一课”制度，切实加强党员教育管理。") == "measure"
    for sent in s:
        assert 0.0 <= sent.confidence <= 1.0 and sent.evidence, sent.text


def test_lessons_mixed_sentences_and_reasons(tmp_path: Path) -> None:
    s = _tag_text(tmp_path, "summary.txt", SUMMARY)
    assert _label(s, "2004年，机关各级党组织深入开展了学习活动，举办培训班84期次。") == "strength"
    assert _label(s, "虽然取得了一定成绩，但仍然存在一些问题。") == "gap"  # main clause (rule 4)
    assert _label(s, "究其原因，主要是机关党务干部多为兼职，精力有限。") == "cause"
    assert _label(s, "1、必须紧紧围绕大局开展机关党建工作。") == "strength"  # lesson under 体会


def test_government_report_parts_and_problem_paragraph(tmp_path: Path) -> None:
    """Review part → strength, the 清醒看到 paragraph → gap, later parts → measure, formulas → other."""
    src = next((SAMPLE / "gov2026").glob("安徽省.txt"))
    doc = ingest_file(src, "gov2026/安徽省.txt")
    for _, stage in STAGES:
        doc = stage(doc)
    by_text = {s.text: s for s in doc.sentences}
    assert by_text["在肯定成绩的同时，我们也清醒看到，发展还面临不少困难和挑战。"].label == "gap"
    assert by_text["全方位开放的深度和层次不足，开放平台的能级不高。"].label == "gap"
    assert by_text["严格煤炭消费总量控制，推动落后燃煤设施改造。"].label == "measure"
    assert by_text["制造业、普惠小微贷款余额分别增长10.7%、13.3%。"].label == "strength"
    assert by_text["现在，我代表省人民政府，向大会报告政府工作，请予审议，并请省政协委员提出意见。"].label == "other"


def test_themes_from_the_dictionary_and_user_extension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert theme_of("加强党风廉政建设，深入开展警示教育") == "廉政"
    assert theme_of("城镇新增就业110万人以上，提高养老服务水平") == "民生"
    from pipeline.dictionaries import read_lines
    from pipeline.tag import themes

    user = tmp_path / "dicts"
    user.mkdir()
    (user / "themes.txt").write_text("统战 统一战线 民主党派 统战工作\n", encoding="utf-8")
    monkeypatch.setenv("HUIBIAN_DICTIONARIES", str(user))
    read_lines.cache_clear()
    themes._themes.cache_clear()
    try:
        assert theme_of("做好统一战线和民主党派工作") == "统战"
    finally:
        monkeypatch.delenv("HUIBIAN_DICTIONARIES")
        read_lines.cache_clear()
        themes._themes.cache_clear()


def test_review_then_corrections_stick_across_reruns_and_reingestion(tmp_path: Path) -> None:
    corpus = tmp_path / "in"
    corpus.mkdir()
    (corpus / "report.txt").write_text(REPORT, encoding="utf-8")
    out = tmp_path / "out"
    run(RunConfig(inputs=[str(corpus)], out=out, use_cache=False))
    xlsx = tmp_path / "review.xlsx"
    assert main(["review", str(out), "--out", str(xlsx), "-n", "5"]) == 0
    sheet = pd.read_excel(xlsx, dtype=str).fillna("")
    assert len(sheet) == 5 and "correct_label" in sheet.columns
    # the editor flips one sentence to a label the tagger did not give
    row = sheet.iloc[0]
    new = "cause" if row["label"] != "cause" else "gap"
    sheet.loc[0, "correct_label"] = new
    sheet.to_excel(xlsx, index=False)

    run(RunConfig(inputs=[str(corpus)], out=out, corrections=xlsx, use_cache=False))
    s = pd.read_parquet(out / "sentences.parquet")
    hit = s[s["text"] == row["text"]]
    assert list(hit["label"]) == [new] and list(hit["evidence"]) == ["correction"]

    # the same text ingested again from another folder (new paths, new run) keeps the correction
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "report.txt").write_text(REPORT, encoding="utf-8")
    out2 = tmp_path / "out2"
    run(RunConfig(inputs=[str(moved)], out=out2, corrections=xlsx, use_cache=False))
    s2 = pd.read_parquet(out2 / "sentences.parquet")
    assert list(s2.loc[s2["text"] == row["text"], "label"]) == [new]


def test_bad_corrections_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a spreadsheet")
    frame = pd.DataFrame({"text": ["一句话。"], "source": ["a.txt"], "label": ["other"],
                          "confidence": [0.5], "evidence": [""]})
    with pytest.raises(RunError, match="bad.xlsx"):
        apply_corrections(frame, bad)
    plain = tmp_path / "plain.csv"
    plain.write_text("text,label\n一句话。,gap\n", encoding="utf-8")
    with pytest.raises(RunError, match="correct_label"):
        apply_corrections(frame, plain)
    assert sentence_key("一句 话。", "x/a.txt") == sentence_key("一句话。", "y/a.docx")


def test_train_is_reproducible_and_learns_corrections(tmp_path: Path) -> None:
    from pipeline.tag.training import train

    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    gold_dir = tmp_path / "shared" / "gold"
    gold_dir.mkdir(parents=True)
    gold = gold_dir / "small.jsonl"
    gold.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows
                              if r["doc"] in ("gov2026/福建省", "gov2026/安徽省")), encoding="utf-8")
    corr = tmp_path / "corr.csv"
    pd.DataFrame({"text": ["资源环境约束趋紧，绿色转型任务较重。"], "source": [""],
                  "correct_label": ["cause"]}).to_csv(corr, index=False)
    a = train([str(gold)], [str(corr)], model=str(tmp_path / "a.joblib"), cv=False)
    b = train([str(gold)], [str(corr)], model=str(tmp_path / "b.joblib"), cv=False)
    ma = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    mb = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert a["examples"] == b["examples"] > 100
    assert ma["data_sha256"] == mb["data_sha256"]
    assert ma["model_sha256"] == mb["model_sha256"]  # same data → same model bytes
    assert a["labels"]["cause"] == 1  # the correction became a training example


def test_saved_model_predicts_what_scikit_learn_predicts_without_importing_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    import numpy as np

    from pipeline.tag.learner import LinearCalibrated, feature_rows, feature_scale, vectorize
    from pipeline.tag.training import build_examples, documents_from_files, fit, load_gold

    rows = load_gold(str(GOLD))
    docs = documents_from_files(rows, [GOLD.resolve().parent.parent])
    examples, _ = build_examples(docs, rows, [])
    vocab, clf, labels = fit(examples)  # calibrated on held-out reports, as `huibian train` does
    assert type(clf).__name__ == "CalibratedClassifierCV" and len(labels) == 5
    X = vectorize([e.feats for e in examples], vocab, feature_scale(vocab))
    ours = LinearCalibrated.from_sklearn(clf).predict_proba(X)
    assert np.allclose(ours, clf.predict_proba(X), rtol=0, atol=1e-12)
    # tagging's own rows (numpy only): the same numbers as through SciPy
    rows = feature_rows([e.feats for e in examples] + [[]], vocab, feature_scale(vocab))  # + an empty row
    lc = LinearCalibrated.from_sklearn(clf)
    both = lc.decision_function(rows)
    assert np.allclose(both[:-1], lc.decision_function(X), rtol=0, atol=1e-12)
    assert (both[-1] == lc.intercept).all()
    assert (ours.argmax(axis=1) == clf.predict_proba(X).argmax(axis=1)).all()
    # the plain regression (too few reports to calibrate) too, binary included
    plain = clf.calibrated_classifiers_[0].estimator
    assert np.allclose(LinearCalibrated.from_sklearn(plain).predict_proba(X), plain.predict_proba(X),
                       rtol=0, atol=1e-12)
    from sklearn.linear_model import LogisticRegression

    y2 = np.array([e.label == "gap" for e in examples])
    two = LogisticRegression(max_iter=2000).fit(X, y2)
    assert np.allclose(LinearCalibrated.from_sklearn(two).predict_proba(X), two.predict_proba(X),
                       rtol=0, atol=1e-12)

    # tagging with the shipped model imports neither scikit-learn nor SciPy
    code = ("import sys; from pipeline.tag.learner import load_model; m = load_model(); "
            "assert m is not None; print(sorted(k for k in ('sklearn', 'scipy') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_shipped_model_is_small_versioned_and_calibrated() -> None:
    model = load_model()
    assert model is not None, "pipeline/tag/model.joblib missing: run `huibian train`"
    assert MODEL_PATH.stat().st_size < 3_000_000
    meta = json.loads(MODEL_PATH.with_suffix(".json").read_text(encoding="utf-8"))
    assert re.fullmatch(r"[0-9a-f]{64}", meta["data_sha256"])
    from pipeline.tag.learner import file_sha256

    assert meta["model_sha256"] == file_sha256(MODEL_PATH)
    # reliability from held-out reports: the confident bins are about as right as they claim
    bins = [b for b in meta["cv"]["reliability"] if b["n"] >= 50]
    assert bins
    for b in bins:
        assert abs(b["accuracy"] - b["mean_conf"]) <= 0.15, b


def test_eval_prints_kappa_and_confusion(sample_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--gold", str(GOLD), "--pred", str(sample_run)]) == 0
    out = capsys.readouterr().out
    m = re.search(r"Cohen's kappa\s+(-?[\d.]+)", out)
    assert m and -1.0 <= float(m.group(1)) <= 1.0
    assert "confusion (rows gold, columns predicted):" in out
    assert re.search(r"^measure\s+\d+\s+\d+", out, re.M)
