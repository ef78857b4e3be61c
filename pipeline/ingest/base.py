"""What every format backend provides (after docling's backends: one small file per format)."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Limits:
    """How far one parser may go: wall time and extra address space of its child process."""

    timeout: float = 60.0
    memory_mb: int | None = 2048


def paragraphs_to_blocks(text: str) -> list[Block]:
    """Split plain text into line blocks; blank lines are kept as paragraph boundaries."""
    blocks: list[Block] = []
    for i, line in enumerate(text.splitlines()):
        if line.strip():
            blocks.append(Block(text=line.rstrip(), para=i))
    return blocks


# --- ZIP containers (DOCX, XLSX, ZIP) --------------------------------------------------------

#: a ZIP-based file may unpack to at most this much, and to at most this ratio of its size
MAX_UNPACKED = 512 * 1024 * 1024
MAX_RATIO = 200
MAX_MEMBERS = 10_000
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)


def check_zip(z: zipfile.ZipFile, size: int, what: str) -> None:
    """Reject ZIP bombs before anything is unpacked (sizes as the archive declares them)."""
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise IngestError(f"{what} has too many members ({len(infos)}; limit {MAX_MEMBERS})")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED:
        raise IngestError(f"{what} would unpack to {total // 2**20} MB (limit {MAX_UNPACKED // 2**20} MB; "
                          "possible ZIP bomb)")
    if total > 10 * 2**20 and total > MAX_RATIO * max(size, 1):
        raise IngestError(f"{what} is compressed {total // max(size, 1)}:1 (possible ZIP bomb)")


def read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, stopping at ``limit`` whatever its header claims (bomb-proof)."""
    out = bytearray()
    with z.open(info) as fh:
        while chunk := fh.read(1 << 20):
            out += chunk
            if len(out) > limit:
                raise IngestError(f"member {info.filename!r} unpacks beyond {limit // 2**20} MB "
                                  "(possible ZIP bomb)")
    return bytes(out)


def check_ooxml(path: Path, what: str, required: str) -> None:
    """An Office Open XML file: a sane ZIP holding ``required``, and no DTD in any XML part.

    The XML libraries here do not resolve entities, but a DOCTYPE/ENTITY has no business in an
    Office file: it is an external-entity (XXE) or billion-laughs attempt, so the file is refused.
    """
    try:
        with zipfile.ZipFile(path) as z:
            check_zip(z, path.stat().st_size, what)
            names = set(z.namelist())
            if required not in names:
                raise IngestError(f"not a {what} (no {required} inside)")
            for info in z.infolist():
                if info.filename.endswith((".xml", ".rels")) and info.file_size:
                    with z.open(info) as fh:
                        head = fh.read(64 * 1024)
                    if _DOCTYPE.search(head):
                        raise IngestError(f"{what} part {info.filename} declares a DOCTYPE/ENTITY "
                                          "(external-entity attack?); not read")
    except zipfile.BadZipFile as e:
        raise IngestError(f"corrupt {what} ({e})") from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError) as e:
        raise IngestError(f"unreadable {what} ({e})") from None
