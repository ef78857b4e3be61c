"""Plain text and Markdown in any common Chinese encoding.

UTF-8 (with or without BOM) and UTF-16 are recognised exactly; among the legacy encodings
(GB2312/GBK/GB18030, Big5) charset-normalizer decides, and short texts — too short for it — are
scored by how many decoded characters are common Chinese characters in that encoding.  A decode
that only works with replacements is an error with the byte position, never silent mojibake.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from charset_normalizer import from_bytes

from ..model import Block, Document
from .base import IngestError

# Encodings Chinese reports actually come in; the detector only chooses among these, so a GBK
# file is never read as Latin-1 mojibake.
_CANDIDATES = ("utf_8", "gb18030", "big5", "utf_16")
_LEGACY = ("gb18030", "big5")
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
#: below this many bytes charset-normalizer is unreliable; score candidates ourselves
_SHORT = 4096


def _common_share(text: str, enc: str) -> float:
    """Share of Han characters that are 'common' in ``enc`` (GB2312 level 1 / Big5 frequent)."""
    han = [c for c in text[:20_000] if "\u4e00" <= c <= "\u9fff"]
    if not han:
        return 0.0
    common = 0
    for c in han:
        try:
            lead = c.encode("gb2312" if enc == "gb18030" else "big5")[0]
        except UnicodeEncodeError:
            continue
        common += (0xB0 <= lead <= 0xD7) if enc == "gb18030" else (0xA4 <= lead <= 0xC6)
    return common / len(han)


def _strict(data: bytes, enc: str) -> str | None:
    try:
        return data.decode(enc)
    except UnicodeDecodeError as e:
        # a file cut mid-character (truncated download): drop the incomplete tail only
        if e.start >= len(data) - 3 and e.start > 0:
            try:
                return data[: e.start].decode(enc)
            except UnicodeDecodeError:
                return None
        return None


def decode(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding). Raises IngestError for binary data or an unknown encoding."""
    if not data.strip():
        raise IngestError("empty file")
    for bom, enc, name in ((codecs.BOM_UTF8, "utf_8", "utf_8_sig"), (codecs.BOM_UTF16_LE, "utf_16_le", "utf_16"),
                           (codecs.BOM_UTF16_BE, "utf_16_be", "utf_16")):
        if data.startswith(bom):
            text = _strict(data[len(bom):], enc)
            if text is None:
                raise IngestError(f"text starts with a {name} byte-order mark but is not valid {name}")
            return text, name
    if b"\x00" in data[:4096]:
        # NUL bytes without a UTF-16 BOM: try UTF-16 without BOM, else it is binary.
        for enc in ("utf_16_le", "utf_16_be"):
            text = _strict(data, enc)
            if text is not None and _looks_like_text(text):
                return text, enc
        raise IngestError("binary data, not text")
    text = _strict(data, "utf_8")
    if text is not None:
        if not _looks_like_text(text):
            raise IngestError("binary data, not text")
        return text, "utf_8"
    decoded = {enc: t for enc in _LEGACY if (t := _strict(data, enc)) is not None}
    if not decoded:
        raise IngestError("binary data or unknown encoding (not UTF-8, UTF-16, GB18030 or Big5)")
    enc = ""
    if len(decoded) == 1:
        enc = next(iter(decoded))
    elif len(data) >= _SHORT:
        best = from_bytes(data[:200_000], cp_isolation=list(_CANDIDATES)).best()
        if best is not None and best.encoding in decoded:
            enc = best.encoding
    if not enc:  # short text or detector undecided: the decode with more common characters
        enc = max(decoded, key=lambda e: (_common_share(decoded[e], e), e == "gb18030"))
    text = decoded[enc]
    if not _looks_like_text(text):
        raise IngestError("binary data, not text")
    return text, enc


def _looks_like_text(text: str) -> bool:
    sample = text[:20_000]
    if not sample:
        return False
    bad = sum(1 for c in sample if (ord(c) < 32 and c not in "\r\n\t\f") or 0xE000 <= ord(c) <= 0xF8FF
              or c == "\ufffd")
    return bad / len(sample) < 0.02


def text_blocks(text: str, markdown: bool = False) -> list[Block]:
    """One block per non-empty line; Markdown '#' headings become heading blocks."""
    blocks: list[Block] = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        m = _MD_HEADING.match(line) if markdown else None
        if m:
            blocks.append(Block(text=m.group(2), para=i, kind="heading", level=len(m.group(1))))
        else:
            blocks.append(Block(text=line.rstrip(), para=i))
    return blocks


class TextBackend:
    name = "txt"
    suffixes = (".txt", ".text", ".md", ".markdown")
    isolated = False  # pure Python, size-capped: cheaper in-process than a fork

    def accepts(self, path: Path, head: bytes) -> bool:
        return not head.startswith((b"%PDF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"\x89PNG", b"\xff\xd8\xff",
                                    b"\x7fELF", b"MZ", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf"))

    def convert(self, path: Path, doc: Document) -> Document:
        text, enc = decode(path.read_bytes())
        doc.encoding = enc
        markdown = path.suffix.lower() in (".md", ".markdown")
        doc.format = "md" if markdown else "txt"
        doc.blocks = text_blocks(text, markdown)
        if not doc.blocks:
            raise IngestError("empty file (white space only)")
        return doc
