"""Plain text and Markdown in any common Chinese encoding."""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from ..model import Block, Document
from .base import IngestError

# Encodings Chinese reports actually come in; the detector only chooses among these, so a GBK
# file is never read as Latin-1 mojibake.
_CANDIDATES = ("utf_8", "gb18030", "big5", "utf_16")


def decode(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding). Raises IngestError for binary data."""
    if not data.strip():
        raise IngestError("empty file")
    for bom, enc in ((codecs.BOM_UTF8, "utf_8_sig"), (codecs.BOM_UTF16_LE, "utf_16"),
                     (codecs.BOM_UTF16_BE, "utf_16")):
        if data.startswith(bom):
            return data.decode(enc), enc
    try:
        return data.decode("utf-8"), "utf_8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:4096]:
        # NUL bytes without a UTF-16 BOM: try UTF-16 without BOM, else it is binary.
        for enc in ("utf_16_le", "utf_16_be"):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            if _looks_like_text(text):
                return text, enc
        raise IngestError("binary data, not text")
    best = from_bytes(data[:200_000], cp_isolation=list(_CANDIDATES)).best()
    if best is None:
        raise IngestError("could not detect the text encoding (not UTF-8, GB18030, Big5 or UTF-16)")
    enc = best.encoding
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as e:
        raise IngestError(f"text is not valid {enc}: {e.reason} at byte {e.start}") from None
    if not _looks_like_text(text):
        raise IngestError("binary data, not text")
    return text, enc


def _looks_like_text(text: str) -> bool:
    sample = text[:20_000]
    if not sample:
        return False
    bad = sum(1 for c in sample if (ord(c) < 32 and c not in "\r\n\t\f") or 0xE000 <= ord(c) <= 0xF8FF)
    return bad / len(sample) < 0.02


class TextBackend:
    name = "txt"
    suffixes = (".txt", ".text", ".md", ".markdown")

    def accepts(self, path: Path, head: bytes) -> bool:
        return not head.startswith((b"%PDF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))

    def convert(self, path: Path, doc: Document) -> Document:
        text, enc = decode(path.read_bytes())
        doc.encoding = enc
        doc.format = "md" if path.suffix.lower() in (".md", ".markdown") else "txt"
        doc.blocks = [Block(text=line.rstrip(), para=i)
                      for i, line in enumerate(text.splitlines()) if line.strip()]
        if not doc.blocks:
            raise IngestError("empty file")
        return doc
