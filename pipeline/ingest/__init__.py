"""Ingest: any input file → ``Document`` with blocks and provenance, or a rejected ``Document``.

Formats are plug-ins: each backend module declares the suffixes it reads and checks the bytes
before converting. ``discover`` turns the command line's inputs into (path, source) pairs so every
file given is accounted for, even the ones no backend reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..model import Document, stable_id
from .base import Backend, IngestError
from .docx import DocxBackend
from .html import HtmlBackend
from .pdf import PdfBackend
from .text import TextBackend

BACKENDS: list[Backend] = [TextBackend(), HtmlBackend(), PdfBackend(), DocxBackend()]

#: the largest file read at all (a 60 MB text file is not a report)
MAX_BYTES = 50 * 1024 * 1024


def backend_for(path: Path) -> Backend | None:
    suffix = path.suffix.lower()
    for b in BACKENDS:
        if suffix in b.suffixes:
            return b
    return None


def discover(inputs: Iterable[str | Path]) -> Iterator[tuple[Path, str]]:
    """Yield (path, source) for every file under the inputs, in a stable order.

    Files that are hidden (start with '.') inside folders are skipped; files named explicitly
    are always yielded. Symlinks are yielded as they are; ``ingest_file`` decides about them.
    """
    for given in inputs:
        p = Path(given)
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    fp = Path(root) / name
                    yield fp, str(fp)
        else:
            yield p, str(given)


def ingest_file(path: Path, source: str | None = None, root: Path | None = None) -> Document:
    """Read one file into a Document; never raises for a bad file (it comes back rejected)."""
    source = source if source is not None else str(path)
    data_id = ""
    doc = Document(doc_id="", source=source)
    try:
        if path.is_symlink() and root is not None:
            target = path.resolve()
            if not target.is_relative_to(root.resolve()):
                raise IngestError("symlink points outside the input folder")
        if not path.exists():
            raise IngestError("file not found")
        if not path.is_file():
            raise IngestError("not a regular file")
        size = path.stat().st_size
        if size == 0:
            raise IngestError("empty file")
        if size > MAX_BYTES:
            raise IngestError(f"file too large ({size // (1024 * 1024)} MB; limit {MAX_BYTES // (1024 * 1024)} MB)")
        with path.open("rb") as fh:
            head = fh.read(4096)
        backend = backend_for(path)
        if backend is None:
            raise IngestError(f"unsupported file type '{path.suffix or '(none)'}'")
        doc.format = backend.name
        if not backend.accepts(path, head):
            raise IngestError(f"content is not {backend.name} (file name says {path.suffix})")
        backend.convert(path, doc)
        data_id = stable_id(source, str(size), _digest(path))
    except IngestError as e:
        doc.reject(str(e))
    except Exception as e:  # a parser bug must not stop the batch
        doc.reject(f"could not be read: {type(e).__name__}: {e}")
    doc.doc_id = data_id or stable_id(source)
    return doc


def _digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha1()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["BACKENDS", "Backend", "IngestError", "discover", "ingest_file", "backend_for"]
