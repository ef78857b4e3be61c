"""The one document model every stage reads and returns.

Document → Article → Sentence, with the raw material (``Block``: a paragraph, heading, table or
TOC line as the format gave it) kept underneath so every sentence can point back to its file,
physical page, printed page and paragraph.  Stages are functions ``Document -> Document``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

Label = Literal["strength", "gap", "cause", "measure", "other"]
LABELS: tuple[str, ...] = ("strength", "gap", "cause", "measure", "other")

BlockKind = Literal["para", "heading", "table", "toc", "furniture"]


@dataclass
class Block:
    """One paragraph-like unit of a source, in reading order."""

    text: str
    para: int  # index of the paragraph in its source (provenance)
    kind: BlockKind = "para"
    level: int | None = None  # heading level when the format says so (DOCX style, Markdown #)
    page: int | None = None  # page as printed on it (folio), when known
    phys_page: int | None = None  # 1-based physical page of a paged format (PDF)
    rows: list[list[str]] | None = None  # cells, for kind == "table"


@dataclass
class Sentence:
    idx: int  # order in its document
    text: str  # normalized text, as eval aligns against
    para: int
    page: int | None = None
    phys_page: int | None = None
    section: list[str] = field(default_factory=list)  # heading path, outermost first
    article_id: str = ""
    is_heading: bool = False
    heading_level: int | None = None
    start: int = 0  # character offset in Document.text (for QDA exports)
    end: int = 0
    tokens: list[str] = field(default_factory=list)
    label: str = "other"
    confidence: float = 0.0
    evidence: str = ""
    theme: str = ""


@dataclass
class Article:
    article_id: str
    title: str
    unit: str = ""
    author: str = ""
    kind: str = "report"  # "front" for covers, prefaces, TOCs; else the kind of report
    page: int | None = None
    first_block: int = 0  # index into Document.blocks where the article starts
    doc_number: str = ""  # 文号 such as 鄞机党〔2008〕2号


@dataclass
class TocEntry:
    title: str
    unit: str = ""
    author: str = ""
    page: int | None = None
    group: str = ""  # TOC sub-heading the entry sits under (一、工委文件)
    doc_number: str = ""


@dataclass
class Document:
    doc_id: str
    source: str  # path as given (for archive members: archive.zip/member)
    format: str = ""
    status: Literal["ok", "rejected"] = "ok"
    reason: str = ""
    encoding: str = ""
    meta: dict[str, str] = field(default_factory=dict)  # unit / title / date a table row supplies
    blocks: list[Block] = field(default_factory=list)
    text: str = ""  # normalized full text; sentences' start/end point into it
    articles: list[Article] = field(default_factory=list)
    toc: list[TocEntry] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_chars(self) -> int:
        return sum(len(b.text) for b in self.blocks if b.kind != "furniture")

    def reject(self, reason: str) -> Document:
        self.status = "rejected"
        self.reason = reason
        self.blocks = []
        return self


def stable_id(*parts: str, n: int = 12) -> str:
    """Short deterministic id from content and path (same inputs, same id on every machine)."""
    h = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:n]
