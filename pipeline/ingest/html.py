"""Web pages saved from a site: main text without navigation and furniture (trafilatura)."""

from __future__ import annotations

from pathlib import Path

import trafilatura

from ..model import Block, Document
from .base import IngestError
from .text import decode


class HtmlBackend:
    name = "html"
    suffixes = (".html", ".htm", ".xhtml", ".shtml")

    def accepts(self, path: Path, head: bytes) -> bool:
        return b"<" in head

    def convert(self, path: Path, doc: Document) -> Document:
        markup, enc = decode(path.read_bytes())
        doc.encoding = enc
        text = trafilatura.extract(markup, include_comments=False, include_tables=True,
                                   favor_recall=True, deduplicate=False)
        if not text:
            raise IngestError("web page has no main text")
        doc.blocks = [Block(text=line.strip(), para=i)
                      for i, line in enumerate(text.splitlines()) if line.strip()]
        title = trafilatura.extract_metadata(markup)
        if title is not None and title.title:
            doc.meta.setdefault("title", title.title)
        return doc
