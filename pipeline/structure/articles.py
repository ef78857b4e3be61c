"""Articles: where each report in a file starts, with title, unit, author and kind."""

from __future__ import annotations

import re
from pathlib import PurePath

from ..model import Article, Document, stable_id

_KINDS = [
    ("政府工作报告", "政府工作报告"), ("工作总结", "工作总结"), ("总结", "工作总结"),
    ("调研报告", "调研报告"), ("调查报告", "调研报告"), ("调查与思考", "调研报告"),
    ("讲话", "讲话"), ("要点", "要点"), ("意见", "意见"), ("通知", "通知"), ("方案", "方案"),
]


def report_kind(title: str) -> str:
    for cue, kind in _KINDS:
        if cue in title:
            return kind
    return "report"


def unit_from_source(source: str) -> str:
    stem = PurePath(source.replace("\\", "/")).stem
    stem = re.sub(r"^\d+[_-][0-9a-f]{6,}$", "", stem)  # seed-style names carry no unit
    return stem


def find_articles(doc: Document) -> list[Article]:
    """One article per document for now; the title is the first body line."""
    title = doc.meta.get("title", "")
    if not title:
        for b in doc.blocks:
            if b.kind in ("para", "heading") and len(b.text.strip()) <= 60:
                title = b.text.strip().lstrip("#").strip()
                break
    unit = doc.meta.get("unit", "") or unit_from_source(doc.source)
    return [Article(article_id=stable_id(doc.doc_id, "0"), title=title, unit=unit,
                    kind=report_kind(title), first_block=0)]
