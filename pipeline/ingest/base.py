"""What every format backend provides (after docling's backends: one small file per format)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..model import Block, Document


class IngestError(Exception):
    """A file that cannot be read; the message is the plain reason shown in documents.csv."""


class Backend(Protocol):
    #: short format name written to documents.csv
    name: str
    #: lower-case file suffixes this backend reads
    suffixes: tuple[str, ...]

    def accepts(self, path: Path, head: bytes) -> bool:
        """Whether the bytes look like this format (magic numbers, not only the name)."""
        ...

    def convert(self, path: Path, doc: Document) -> Document:
        """Fill ``doc.blocks`` (and ``doc.meta``); raise IngestError with a plain reason."""
        ...


def paragraphs_to_blocks(text: str) -> list[Block]:
    """Split plain text into line blocks; blank lines are kept as paragraph boundaries."""
    blocks: list[Block] = []
    for i, line in enumerate(text.splitlines()):
        if line.strip():
            blocks.append(Block(text=line.rstrip(), para=i))
    return blocks
