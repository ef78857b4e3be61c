"""Documents → the contract's per-document tables (plain records, then DataFrames)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .model import Document

DOCUMENT_COLUMNS = ["doc_id", "source", "format", "status", "reason", "n_chars", "encoding",
                    "n_articles", "n_sentences"]
ARTICLE_COLUMNS = ["article_id", "doc_id", "title", "unit", "author", "kind", "page", "doc_number",
                   "n_sentences"]
TOC_COLUMNS = ["doc_id", "title", "unit", "author", "page", "group", "doc_number"]
SENTENCE_COLUMNS = ["doc_id", "article_id", "unit", "section", "idx", "text", "label", "confidence",
                    "evidence", "theme", "page", "phys_page", "para", "kind", "start", "end",
                    "source", "tokens"]


def document_rows(doc: Document) -> dict[str, list[dict[str, Any]]]:
    """All rows one document contributes, so per-document work can run anywhere and be cached."""
    arts = {a.article_id: a for a in doc.articles}
    counts: dict[str, int] = {}
    for s in doc.sentences:
        counts[s.article_id] = counts.get(s.article_id, 0) + 1
    rows: dict[str, list[dict[str, Any]]] = {
        "documents": [{
            "doc_id": doc.doc_id, "source": doc.source, "format": doc.format, "status": doc.status,
            "reason": doc.reason, "n_chars": doc.n_chars if doc.status == "ok" else 0,
            "encoding": doc.encoding, "n_articles": len(doc.articles),
            "n_sentences": len(doc.sentences),
        }],
        "articles": [{
            "article_id": a.article_id, "doc_id": doc.doc_id, "title": a.title, "unit": a.unit,
            "author": a.author, "kind": a.kind, "page": a.page, "doc_number": a.doc_number,
            "n_sentences": counts.get(a.article_id, 0),
        } for a in doc.articles],
        "toc": [{
            "doc_id": doc.doc_id, "title": t.title, "unit": t.unit, "author": t.author,
            "page": t.page, "group": t.group, "doc_number": t.doc_number,
        } for t in doc.toc],
        "sentences": [],
    }
    for s in doc.sentences:
        a = arts.get(s.article_id)
        kind = s.evidence if s.evidence in ("furniture", "toc", "table") else (
            "heading" if s.is_heading else "body")
        rows["sentences"].append({
            "doc_id": doc.doc_id, "article_id": s.article_id, "unit": a.unit if a else "",
            "section": " > ".join(s.section), "idx": s.idx, "text": s.text, "label": s.label,
            "confidence": round(float(s.confidence), 4), "evidence": s.evidence, "theme": s.theme,
            "page": s.page, "phys_page": s.phys_page, "para": s.para, "kind": kind,
            "start": s.start, "end": s.end, "source": doc.source,
            # jieba words from the segment stage, space-joined (compact at season scale: a list
            # column costs ~1.5 KB a sentence), so season analyses need not cut again
            "tokens": " ".join(s.tokens),
        })
    return rows


def to_frames(parts: list[dict[str, list[dict[str, Any]]]]) -> dict[str, pd.DataFrame]:
    cols = {"documents": DOCUMENT_COLUMNS, "articles": ARTICLE_COLUMNS, "toc": TOC_COLUMNS,
            "sentences": SENTENCE_COLUMNS}
    frames: dict[str, pd.DataFrame] = {}
    for name, columns in cols.items():
        records = [r for p in parts for r in p.get(name, [])]
        df = pd.DataFrame.from_records(records, columns=columns)
        for c in ("page", "phys_page"):
            if c in df:
                df[c] = df[c].astype("Int64")
        frames[name] = df
    return frames
