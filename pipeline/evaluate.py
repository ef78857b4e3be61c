"""``huibian eval``: score a run's sentence labels against gold sentences (CONTRACT.md).

Each gold sentence is aligned to its document's sentences by text — white space removed and
full-/half-width forms unified — searching forward in document order, and takes the predicted
label that covers most of its characters. A gold sentence that cannot be aligned counts as wrong.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from rapidfuzz import fuzz

from .model import LABELS

UNALIGNED = "(unaligned)"


def canon(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def load_gold(path: Path | str) -> list[dict[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not a JSON line ({e.msg})") from None
    return rows


def _doc_key(source: str) -> tuple[str, str]:
    p = PurePosixPath(source.replace("\\", "/"))
    return str(p), str(p.with_suffix(""))


def match_document(gold_doc: str, sources: list[str]) -> str | None:
    """The source whose path ends with the gold ``doc`` (with or without its extension)."""
    g = gold_doc.replace("\\", "/").strip("/")
    best = None
    for src in sources:
        full, stem = _doc_key(src)
        for cand in (full, stem):
            if cand == g or cand.endswith("/" + g):
                if best is None or len(src) < len(best):
                    best = src
    return best


@dataclass
class _DocIndex:
    text: str  # canonical text of all sentences concatenated
    owner: list[int]  # for each character, the sentence row it belongs to
    labels: list[str]
    cursor: int = 0
    used: set[int] = field(default_factory=set)


def _index(sent: pd.DataFrame) -> _DocIndex:
    text_parts: list[str] = []
    owner: list[int] = []
    labels = sent["label"].tolist()
    for i, t in enumerate(sent["text"].tolist()):
        c = canon(t)
        text_parts.append(c)
        owner.extend([i] * len(c))
    return _DocIndex("".join(text_parts), owner, labels)


def _align(idx: _DocIndex, gold_text: str) -> str | None:
    g = canon(gold_text)
    if not g:
        return None
    pos = idx.text.find(g, idx.cursor)
    if pos < 0:
        pos = idx.text.find(g)
    if pos >= 0:
        span = (pos, pos + len(g))
        idx.cursor = pos + len(g)
    else:
        # tolerate small differences (a dropped character, a re-joined line)
        if len(g) < 4:
            return None
        res = fuzz.partial_ratio_alignment(g, idx.text, score_cutoff=85)
        if res is None:
            return None
        span = (res.dest_start, res.dest_end)
    votes = Counter(idx.labels[idx.owner[k]] for k in range(*span))
    return votes.most_common(1)[0][0] if votes else None


def evaluate(gold: list[dict[str, str]], sentences: pd.DataFrame, documents: pd.DataFrame | None = None
             ) -> dict[str, Any]:
    sentences = sentences.sort_values(["source", "idx"]) if "source" in sentences else sentences
    sources = sorted(sentences["source"].unique().tolist()) if len(sentences) else []
    indexes: dict[str, _DocIndex] = {}
    pairs: list[tuple[str, str]] = []
    aligned = 0
    for row in gold:
        src = match_document(row["doc"], sources)
        pred = None
        if src is not None:
            if src not in indexes:
                indexes[src] = _index(sentences[sentences["source"] == src])
            pred = _align(indexes[src], row["text"])
        if pred is not None:
            aligned += 1
        pairs.append((row["label"], pred or UNALIGNED))
    return score(pairs, aligned)


def score(pairs: list[tuple[str, str]], aligned: int) -> dict[str, Any]:
    labels = [lab for lab in LABELS if any(g == lab for g, _ in pairs)]
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for g, p in pairs:
        confusion[g][p] += 1
        if g == p:
            tp[g] += 1
        else:
            fn[g] += 1
            fp[p] += 1
    per: dict[str, dict[str, float]] = {}
    for lab in labels:
        prec = tp[lab] / (tp[lab] + fp[lab]) if tp[lab] + fp[lab] else 0.0
        rec = tp[lab] / (tp[lab] + fn[lab]) if tp[lab] + fn[lab] else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[lab] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                    "support": tp[lab] + fn[lab]}
    n = len(pairs)
    macro = sum(v["f1"] for v in per.values()) / len(per) if per else 0.0
    accuracy = sum(tp.values()) / n if n else 0.0
    # Cohen's kappa between gold and predicted labels (unaligned counts as its own category)
    gold_c = Counter(g for g, _ in pairs)
    pred_c = Counter(p for _, p in pairs)
    pe = sum(gold_c[k] * pred_c.get(k, 0) for k in gold_c) / (n * n) if n else 0.0
    kappa = (accuracy - pe) / (1 - pe) if n and pe < 1 else 0.0
    return {
        "n_gold": n, "aligned": aligned, "aligned_share": round(aligned / n, 4) if n else 0.0,
        "accuracy": round(accuracy, 4), "macro_f1": round(macro, 4), "kappa": round(kappa, 4),
        "per_label": per,
        "confusion": {g: dict(sorted(c.items())) for g, c in sorted(confusion.items())},
    }


def format_report(r: dict[str, Any]) -> str:
    lines = [f"gold sentences: {r['n_gold']}   aligned: {r['aligned']} ({r['aligned_share']:.1%})",
             "", f"{'label':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for lab, v in r["per_label"].items():
        lines.append(f"{lab:<10}{v['precision']:>10.3f}{v['recall']:>10.3f}{v['f1']:>10.3f}{v['support']:>9}")
    lines += ["", f"macro-F1  {r['macro_f1']:.3f}   accuracy {r['accuracy']:.3f}   Cohen's kappa {r['kappa']:.3f}",
              "", "confusion (rows gold, columns predicted):"]
    cols = [lab for lab in LABELS] + [UNALIGNED]
    cols = [c for c in cols if any(c in row for row in r["confusion"].values())]
    lines.append(" " * 10 + "".join(f"{c[:9]:>10}" for c in cols))
    for g, row in r["confusion"].items():
        lines.append(f"{g:<10}" + "".join(f"{row.get(c, 0):>10}" for c in cols))
    return "\n".join(lines)
