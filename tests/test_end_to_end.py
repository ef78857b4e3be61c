"""Issue 2: `huibian run` on real inputs writes every contract file; bad input is handled."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import SAMPLE, seed

CONTRACT = {
    "documents.csv": ["doc_id", "source", "format", "status", "reason", "n_chars"],
    "articles.parquet": ["article_id", "doc_id", "title", "unit", "author", "kind", "page"],
    "toc.parquet": ["doc_id", "title", "unit", "author", "page"],
    "sentences.parquet": ["doc_id", "article_id", "unit", "section", "idx", "text", "label",
                          "confidence", "evidence", "theme", "page"],
    "matrix.parquet": ["unit", "theme", "label", "n", "share"],
}
LABELS = {"strength", "gap", "cause", "measure", "other"}


def _huibian(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_run_without_arguments_writes_contract_files(tmp_path: Path) -> None:
    res = _huibian("run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "outputs" / "latest"
    for name, columns in CONTRACT.items():
        path = out / name
        assert path.exists(), name
        df = pd.read_csv(path) if name.endswith(".csv") else pd.read_parquet(path)
        assert set(columns) <= set(df.columns), (name, set(columns) - set(df.columns))
    docs = pd.read_csv(out / "documents.csv", keep_default_na=False)
    n_files = sum(1 for p in SAMPLE.rglob("*") if p.is_file())
    assert len(docs) == n_files
    assert (docs["status"] == "ok").all(), docs[docs["status"] != "ok"][["source", "reason"]]
    sentences = pd.read_parquet(out / "sentences.parquet")
    assert set(sentences["label"]) <= LABELS
    assert sentences["confidence"].between(0, 1).all()
    assert set(sentences["doc_id"]) == set(docs["doc_id"])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for key in ("started", "finished", "inputs", "ok", "rejected", "timings", "versions"):
        assert key in manifest
    assert manifest["inputs"] == n_files
    html = (out / "digest.html").read_text(encoding="utf-8")
    assert "<html" in html and "山东省" in html
    # self-contained: nothing loaded from the network
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_traditional_speech_is_simplified_and_free_of_pinyin(sample_run: Path) -> None:
    sentences = pd.read_parquet(sample_run / "sentences.parquet")
    speech = sentences[sentences["source"].str.contains(seed("003").name)]
    assert len(speech) > 100
    text = "".join(speech["text"])
    assert "机关党建设会议讲话" in text and "機關" not in text
    assert not re.search(r"[(（][a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ]+[)）]", text)
    assert "(guān)" not in text


def test_furniture_is_kept_apart_from_report_text(sample_run: Path) -> None:
    sentences = pd.read_parquet(sample_run / "sentences.parquet")
    page = sentences[sentences["source"].str.contains(seed("001").name)]
    furniture = page[page["kind"] == "furniture"]["text"].tolist()
    assert any("本文地址" in t for t in furniture)
    assert any("发布时间" in t for t in furniture)
    body = page[page["kind"].isin(["body", "heading"])]["text"]
    assert not body.str.contains("本文地址|发布时间").any()


def test_bad_file_is_rejected_with_reason_and_run_goes_on(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "good.txt").write_bytes("一、基本情况\n今年我们完成了各项工作任务。\n".encode("gbk"))
    (inputs / "empty.txt").write_bytes(b"")
    (inputs / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (inputs / "notes.xyz").write_text("unknown", encoding="utf-8")
    res = _huibian("run", str(inputs), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    docs = pd.read_csv(tmp_path / "out" / "documents.csv", keep_default_na=False).set_index("source")
    assert len(docs) == 4
    good = docs.loc[str(inputs / "good.txt")]
    assert good["status"] == "ok" and good["reason"] == ""
    for name in ("empty.txt", "binary.txt", "notes.xyz"):
        row = docs.loc[str(inputs / name)]
        assert row["status"] == "rejected" and len(row["reason"]) > 5, (name, row["reason"])
    sentences = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    assert "今年我们完成了各项工作任务。" in set(sentences["text"])


def test_missing_input_is_a_one_line_error(tmp_path: Path) -> None:
    res = _huibian("run", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert "nope" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_unwritable_output_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    res = _huibian("run", str(seed("002")), "--out", str(blocker / "out"), cwd=tmp_path)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_python_m_pipeline_is_the_same_cli(tmp_path: Path) -> None:
    res = _huibian("--help", cwd=tmp_path)
    assert res.returncode == 0
    for verb in ("run", "eval", "train", "review", "kwic", "compare", "compile"):
        assert verb in res.stdout
