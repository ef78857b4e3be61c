"""Tables of contents: find a 目录 and parse its entries (title, unit, author, printed page)."""

from __future__ import annotations

import re

from ..model import Document, TocEntry

_TOC_TITLE = re.compile(r"^\s*(?:#+\s*)?目\s*录\s*$")
_PAGE_END = re.compile(r"[（(]\s*(\d{1,4})\s*[)）]\s*$|[.…·\s]\s*(\d{1,4})\s*$")


def mark_toc(doc: Document) -> None:
    """Mark the blocks of a 目录 as kind 'toc' and parse entries into ``doc.toc``."""
    blocks = doc.blocks
    for i, b in enumerate(blocks):
        if b.kind == "para" and _TOC_TITLE.match(b.text):
            b.kind = "toc"
            j = i + 1
            misses = 0
            while j < len(blocks) and misses < 3:
                t = blocks[j].text
                if _PAGE_END.search(t) or len(t.strip()) <= 40:
                    blocks[j].kind = "toc"
                    misses = 0 if _PAGE_END.search(t) else misses + 1
                    j += 1
                else:
                    break
            # trailing non-entry lines belong to the body again
            while j - 1 > i and not _PAGE_END.search(blocks[j - 1].text):
                blocks[j - 1].kind = "para"
                j -= 1
            doc.toc = parse_entries([blocks[k].text for k in range(i + 1, j)])
            return


def parse_entries(lines: list[str]) -> list[TocEntry]:
    entries: list[TocEntry] = []
    pending = ""
    for line in lines:
        m = _PAGE_END.search(line)
        if not m:
            pending = (pending + line.strip()) if pending else line.strip()
            continue
        page = int(m.group(1) or m.group(2))
        body = (pending + line[: m.start()]).strip()
        pending = ""
        body = re.sub(r"[.…·]{2,}", "\t", body)
        parts = [p.strip() for p in re.split(r"\t+|\s{2,}", body) if p.strip()]
        title = parts[0] if parts else ""
        unit = parts[-1] if len(parts) > 1 else ""
        entries.append(TocEntry(title=title, unit=unit, page=page))
    return entries
