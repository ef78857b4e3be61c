"""``huibian train``: fit the role model on gold sentences (and editors' corrections).

The model needs each gold sentence's context (section, paragraph, neighbours), so training works
on whole documents:

* ``--sentences RUN_DIR`` reads the sentences of a ``huibian run`` over the gold's documents;
* otherwise the documents are looked up by the gold ``doc`` names under the gold file's parent
  folder's parent (``../shared`` for ``../shared/gold/dev.jsonl``) and the bundled sample corpus,
  and the per-document stages (ingest → normalize → structure → segment) are run on them.

Training is reproducible: documents and examples are processed in sorted order, the solver is
deterministic (lbfgs, fixed ``random_state``) and the same data give the same model file.
The report prints a leave-one-report-out cross-validation (each report's sentences stay together).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import canon, load_gold, match_document, score
from ..model import LABELS, Sentence
from .features import analyse
from .learner import (
    FORMAT,
    MODEL_PATH,
    SIDECAR_SUFFIX,
    LinearCalibrated,
    _load,
    feature_scale,
    file_sha256,
    vectorize,
)

REPO = Path(__file__).resolve().parent.parent.parent
MIN_COUNT = 2  # a feature must occur in this many training sentences to enter the vocabulary
C = 0.5
# a web page that strings several reports together numbers them "一 : …", "二 : …"
_PAGE_REPORT = re.compile(r"^[一二三四五六七八九十]+\s*:\s")


@dataclass
class Example:
    feats: list[str]
    label: str
    rule: str
    group: str
    kind: str
    weight: float = 1.0


@dataclass
class DocSentences:
    source: str
    sentences: list[Sentence]
    titles: list[str]
    kinds: dict[str, str]


# ---------------------------------------------------------------- documents for the gold


def documents_from_run(run_dir: Path) -> list[DocSentences]:
    """Sentences of a finished run, rebuilt as Sentence objects (tokens re-cut)."""
    import pandas as pd

    from ..segment import cut

    sent = pd.read_parquet(run_dir / "sentences.parquet")
    arts = pd.read_parquet(run_dir / "articles.parquet") if (run_dir / "articles.parquet").exists() else None
    titles = dict(zip(arts["article_id"], arts["title"], strict=True)) if arts is not None else {}
    out = []
    for source, d in sorted(sent.groupby("source"), key=lambda x: x[0]):
        d = d.sort_values("idx")
        ss = []
        for r in d.itertuples(index=False):
            kind = getattr(r, "kind", "body")
            s = Sentence(idx=int(r.idx), text=str(r.text), para=int(r.para) if r.para == r.para else 0,
                         section=[t for t in str(r.section).split(" > ") if t],
                         article_id=str(r.article_id), is_heading=kind == "heading")
            s.evidence = kind if kind in ("furniture", "toc", "table") else ""
            s.tokens = cut(s.text)
            ss.append(s)
        first = [titles.get(ss[0].article_id, "")] if ss else []
        out.append(DocSentences(str(source), ss, first, {}))
    return out


def documents_from_files(gold: Sequence[dict[str, str]], roots: Sequence[Path]) -> list[DocSentences]:
    """Find each gold document under ``roots`` and run the per-document stages on it."""
    from ..ingest import discover, ingest_file
    from ..normalize import normalize
    from ..segment import segment
    from ..structure import structure
    from . import _article_kinds

    files: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for path, _src in discover([str(root)]):
                files.setdefault(str(path), path)
    sources = sorted(files)
    wanted = sorted({g["doc"] for g in gold})
    out = []
    seen: set[str] = set()
    for doc in wanted:
        src = match_document(doc, sources)
        if src is None or src in seen:
            if src is None:
                print(f"huibian train: no file found for gold doc {doc!r}", file=sys.stderr)
            continue
        seen.add(src)
        d = ingest_file(files[src], src)
        for stage in (normalize, structure, segment):
            if d.status == "ok":
                d = stage(d)
        if d.status != "ok":
            print(f"huibian train: {src}: {d.reason}", file=sys.stderr)
            continue
        out.append(DocSentences(src, d.sentences, [a.title for a in d.articles[:1]], _article_kinds(d)))
    return out


# ---------------------------------------------------------------- examples


def align(doc: DocSentences, texts: Sequence[str]) -> list[int | None]:
    """Index of the sentence covering most of each text, searching forward in document order."""
    parts, owner = [], []
    for k, s in enumerate(doc.sentences):
        c = canon(s.text)
        parts.append(c)
        owner.extend([k] * len(c))
    full = "".join(parts)
    cursor = 0
    out: list[int | None] = []
    for t in texts:
        g = canon(t)
        pos = full.find(g, cursor) if g else -1
        if pos < 0 and g:
            pos = full.find(g)
        if pos < 0:
            out.append(None)
            continue
        cursor = pos + len(g)
        votes = Counter(owner[pos:pos + len(g)])
        out.append(votes.most_common(1)[0][0])
    return out


def groups_of(doc: DocSentences) -> list[str]:
    """Cross-validation group per sentence: the document, split into the reports it strings together."""
    out, n, art = [], 0, None
    for s in doc.sentences:
        if s.article_id != art:
            art = s.article_id
            n += 1
        elif _PAGE_REPORT.match(s.text):
            n += 1
        out.append(f"{doc.source}#{n}")
    return out


def build_examples(docs: Sequence[DocSentences], gold: Sequence[dict[str, str]],
                   corrections: Sequence[dict[str, str]] = ()) -> tuple[list[Example], int]:
    by_doc: dict[str, list[dict[str, str]]] = {}
    sources = [d.source for d in docs]
    for g in gold:
        src = match_document(g["doc"], sources)
        if src is not None:
            by_doc.setdefault(src, []).append(g)
    examples: list[Example] = []
    missing = 0
    for d in docs:
        ctx = analyse(d.sentences, d.titles, d.source, d.kinds)
        groups = groups_of(d)
        rows = by_doc.get(d.source, [])
        idx = align(d, [r["text"] for r in rows])
        fixed = _corrected(d, corrections)  # an editor's correction outranks the gold line
        used: set[int] = set()
        for r, k in zip(rows, idx, strict=True):
            if k is None or k in used or r.get("label") not in LABELS:
                missing += k is None
                continue
            used.add(k)
            lab = fixed.pop(k, r["label"])
            examples.append(Example(ctx[k].feats, lab, ctx[k].label, groups[k], ctx[k].kind,
                                    weight=2.0 if lab != r["label"] else 1.0))
        for k, lab in sorted(fixed.items()):
            examples.append(Example(ctx[k].feats, lab, ctx[k].label, groups[k], ctx[k].kind, weight=2.0))
    return examples, missing


def _corrected(d: DocSentences, corrections: Sequence[dict[str, str]]) -> dict[int, str]:
    """Sentence index → corrected label for the corrections that match this document."""
    from .corrections import sentence_key

    if not corrections:
        return {}
    want = {c["key"]: c["correct_label"] for c in corrections if c.get("key")}
    by_text = {canon(c.get("text", "")): c["correct_label"] for c in corrections
               if c.get("text") and not c.get("source")}
    out = {}
    for k, s in enumerate(d.sentences):
        lab = want.get(sentence_key(s.text, d.source)) or by_text.get(canon(s.text))
        if lab in LABELS:
            out[k] = lab
    return out


# ---------------------------------------------------------------- fitting


def make_vocab(feats: Sequence[Sequence[str]]) -> dict[str, int]:
    df: Counter[str] = Counter()
    for fs in feats:
        df.update(set(fs))
    keep = sorted(f for f, n in df.items() if n >= MIN_COUNT)
    return {f: i for i, f in enumerate(keep)}


def _estimator():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, solver="lbfgs", max_iter=3000, tol=1e-4, random_state=0)


def fit(examples: Sequence[Example]) -> tuple[dict[str, int], Any, list[str]]:
    """Vocabulary and a sigmoid-calibrated logistic regression (calibrated on held-out reports)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold

    vocab = make_vocab([e.feats for e in examples])
    X = vectorize([e.feats for e in examples], vocab, feature_scale(vocab))
    y = np.array([e.label for e in examples])
    w = np.array([e.weight for e in examples])
    groups = np.array([e.group for e in examples])
    n_groups = len(set(groups))
    if n_groups >= 3 and min(Counter(y).values()) >= 3:
        splits = list(GroupKFold(n_splits=3).split(X, y, groups))
        clf = CalibratedClassifierCV(_estimator(), method="sigmoid", cv=splits, ensemble=False)
    else:  # too little data to hold reports out: plain logistic regression
        clf = _estimator()
    clf.fit(X, y, sample_weight=w)
    return vocab, clf, [str(c) for c in clf.classes_]


def cross_validate(examples: Sequence[Example]) -> dict[str, Any]:
    """Leave-one-report-out: model and rules scored on every held-out report, overall and per kind."""
    groups = sorted({e.group for e in examples})
    pred: list[str] = [""] * len(examples)
    probs: list[float] = [0.0] * len(examples)
    if len(groups) < 3:
        return {}
    for g in groups:
        train = [e for e in examples if e.group != g]
        test = [k for k, e in enumerate(examples) if e.group == g]
        if len({e.label for e in train}) < 2:
            continue
        vocab, clf, labels = fit(train)
        X = vectorize([examples[k].feats for k in test], vocab, feature_scale(vocab))
        P = LinearCalibrated.from_sklearn(clf).predict_proba(X)  # as tagging computes it
        for k, p in zip(test, P, strict=True):
            pred[k] = labels[int(p.argmax())]
            probs[k] = float(p.max())
    out: dict[str, Any] = {}
    kinds = {"all": None, **{k: k for k in sorted({e.kind for e in examples})}}
    for name, kind in kinds.items():
        sel = [k for k, e in enumerate(examples) if kind is None or e.kind == kind]
        if not sel:
            continue
        m = score([(examples[k].label, pred[k]) for k in sel], len(sel))
        r = score([(examples[k].label, examples[k].rule) for k in sel], len(sel))
        out[name] = {"n": len(sel), "model_macro_f1": m["macro_f1"], "rules_macro_f1": r["macro_f1"],
                     "model_kappa": m["kappa"],
                     "model_f1": {lab: v["f1"] for lab, v in m["per_label"].items()}}
    out["reliability"] = reliability([e.label for e in examples], pred, probs)
    return out


def reliability(gold: Sequence[str], pred: Sequence[str], conf: Sequence[float]) -> list[dict[str, Any]]:
    """Accuracy per confidence bin (of sentences at 0.9 about 90 % should be right)."""
    bins = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.01)]
    out = []
    for lo, hi in bins:
        sel = [k for k, c in enumerate(conf) if lo <= c < hi and pred[k]]
        if sel:
            acc = sum(gold[k] == pred[k] for k in sel) / len(sel)
            mean = sum(conf[k] for k in sel) / len(sel)
            out.append({"bin": f"{lo:.2f}-{min(hi, 1.0):.2f}", "n": len(sel), "mean_conf": round(mean, 3),
                        "accuracy": round(acc, 3)})
    return out


def data_hash(examples: Sequence[Example]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(("\x1f".join(sorted(e.feats)) + "\x1e" + e.label + "\x1d").encode("utf-8"))
    return h.hexdigest()


def save(path: Path, vocab: dict[str, int], clf: Any, labels: list[str], meta: dict[str, Any]) -> None:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    # numbers only (no scikit-learn objects): loading the model must not import scikit-learn
    features = sorted(vocab, key=vocab.__getitem__)
    joblib.dump({"format": FORMAT, "features": features,
                 "clf": LinearCalibrated.from_sklearn(clf).to_dict(), "labels": labels},
                path, compress=3)
    meta = {**meta, "model_sha256": file_sha256(path)}
    path.with_suffix(SIDECAR_SUFFIX).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n",
                                                encoding="utf-8")
    _load.cache_clear()


def train(gold_files: Sequence[str], corrections: Sequence[str] = (), sentences: str | None = None,
          model: str | None = None, cv: bool = True) -> dict[str, Any]:
    from .. import __version__
    from .corrections import read_corrections

    gold: list[dict[str, str]] = []
    for g in gold_files:
        gold += load_gold(g)
    corr: list[dict[str, str]] = []
    for c in corrections:
        corr += read_corrections(Path(c))
    if sentences:
        docs = documents_from_run(Path(sentences))
    else:
        roots = sorted({Path(g).resolve().parent.parent for g in gold_files}) + [REPO / "corpus" / "sample"]
        docs = documents_from_files(gold, roots)
    examples, missing = build_examples(docs, gold, corr)
    if len({e.label for e in examples}) < 2:
        raise ValueError("too few aligned gold sentences to train (need at least two labels)")
    report: dict[str, Any] = {"examples": len(examples), "unaligned_gold": missing,
                              "labels": dict(sorted(Counter(e.label for e in examples).items())),
                              "groups": len({e.group for e in examples})}
    if cv:
        report["cv"] = cross_validate(examples)
    vocab, clf, labels = fit(examples)
    out = Path(model) if model else MODEL_PATH
    meta = {"format": FORMAT, "huibian": __version__, "data_sha256": data_hash(examples),
            "n_features": len(vocab), "C": C, **report}
    save(out, vocab, clf, labels, meta)
    report["model"] = str(out)
    return report


def train_command(a: argparse.Namespace) -> int:
    for f in list(a.gold) + list(a.corrections or []):
        if not Path(f).exists():
            print(f"huibian: file not found: {f}", file=sys.stderr)
            return 2
    if a.sentences and not (Path(a.sentences) / "sentences.parquet").exists():
        print(f"huibian: no sentences.parquet in {a.sentences}", file=sys.stderr)
        return 2
    try:
        r = train(a.gold, a.corrections or [], a.sentences, a.model)
    except ValueError as e:
        print(f"huibian: {e}", file=sys.stderr)
        return 2
    print(f"trained on {r['examples']} sentences from {r['groups']} reports "
          f"({r['unaligned_gold']} gold sentences not found) → {r['model']}")
    print("labels: " + ", ".join(f"{k} {v}" for k, v in r["labels"].items()))
    for name, v in r.get("cv", {}).items():
        if name == "reliability":
            continue
        print(f"leave-one-report-out [{name}] n={v['n']}: model macro-F1 {v['model_macro_f1']:.3f} "
              f"(rules {v['rules_macro_f1']:.3f}), kappa {v['model_kappa']:.3f}; "
              + " ".join(f"{k} {f:.2f}" for k, f in v["model_f1"].items()))
    for b in r.get("cv", {}).get("reliability", []):
        print(f"  confidence {b['bin']}: n={b['n']:4d} mean {b['mean_conf']:.2f} accuracy {b['accuracy']:.2f}")
    return 0
