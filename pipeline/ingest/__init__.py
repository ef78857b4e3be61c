"""Ingest: any input file → ``Document``(s) with blocks and provenance, or a rejected ``Document``.

Formats are plug-ins: each backend module declares the suffixes it reads and checks the bytes
before converting. ``discover`` turns the command line's inputs into (path, source) pairs so every
file given is accounted for, even the ones no backend reads.  ``ingest_all`` returns every document
one input holds (a ZIP's members, a spreadsheet's rows); ``ingest_file`` the first of them.

Risky parsers (C libraries, converters) run in a forked child with a time and memory limit
(``isolate.run_isolated``): a hostile file can only hang or crash its own child.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from ..model import Document, stable_id
from .base import Backend, IngestError, Limits
from .docx import DocxBackend
from .html import HtmlBackend
from .isolate import run_isolated
from .legacy import LegacyWordBackend
from .ocr import ImageBackend
from .pdf import PdfBackend
from .table import TableBackend
from .text import TextBackend
from .zip import ZipBackend

BACKENDS: list[Any] = [TextBackend(), HtmlBackend(), PdfBackend(), DocxBackend(), LegacyWordBackend(),
                       TableBackend(), ZipBackend(), ImageBackend()]

#: the largest file read at all (a 60 MB text file is not a report); paged and packed formats
#: (scans, archives) may be bigger
MAX_BYTES = 50 * 1024 * 1024
MAX_BYTES_BY_FORMAT = {"txt": 20 * 1024 * 1024, "pdf": 300 * 1024 * 1024, "zip": 500 * 1024 * 1024,
                       "image": 100 * 1024 * 1024}

# what a file really is, for a reason like "content is a PNG image, not docx"
_MAGIC = ((b"%PDF-", "a PDF"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"GIF8", "a GIF image"), (b"PK\x03\x04", "a ZIP container"), (b"\xd0\xcf\x11\xe0", "an old Office file"),
          (b"{\\rtf", "RTF"), (b"\x7fELF", "a program (ELF)"), (b"MZ", "a Windows program"),
          (b"\x1f\x8b", "gzip data"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"))

_HTML_START = re.compile(rb"^\s*(?:<!doctype\s+html|<html|<head|<meta|<body|<\?xml[^>]*>\s*<html)", re.I)


def _is_html(head: bytes) -> bool:
    return bool(_HTML_START.match(head.lstrip(b"\xef\xbb\xbf")[:512]))


_CONFIG: dict[str, Any] = {}
#: the run's ``[ingest]`` settings travel to spawned worker processes in this variable
CONFIG_ENV = "HUIBIAN_INGEST_CONFIG"


def configure(config: dict[str, Any] | None) -> None:
    """Take the run's ``--config`` (its ``[ingest]`` table) for the following ingests, here and
    in worker processes started afterwards (they inherit the environment).

    Keys: ``table`` (``text``/``unit``/``title``/``date``/``key``/``author``/``sheet`` column
    names of one-report-per-row spreadsheets), ``timeout_scale`` (multiplies parser time limits),
    ``isolate`` (false: parse in-process, for debugging).
    """
    section = dict((config or {}).get("ingest", {}))
    _CONFIG.clear()
    _CONFIG.update(section)
    if section:
        os.environ[CONFIG_ENV] = json.dumps(section, ensure_ascii=False)
    else:
        os.environ.pop(CONFIG_ENV, None)


def _options() -> dict[str, Any]:
    if not _CONFIG and os.environ.get(CONFIG_ENV):
        try:
            _CONFIG.update(json.loads(os.environ[CONFIG_ENV]))
        except (ValueError, TypeError):
            pass
    return _CONFIG


def backend_for(path: Path) -> Backend | None:
    suffix = path.suffix.lower()
    for b in BACKENDS:
        if suffix in b.suffixes:
            return b
    return None


def discover(inputs: Iterable[str | Path]) -> Iterator[tuple[Path, str]]:
    """Yield (path, source) for every file under the inputs, in a stable order.

    Hidden folders (.git) are not entered; hidden files and symlinked folders inside a folder are
    yielded so they get a row with a reason. Symlinks are yielded as they are; ``ingest_all``
    decides about them.
    """
    for given in inputs:
        p = Path(given)
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                keep = []
                for d in sorted(dirs):
                    if (Path(root) / d).is_symlink():
                        files.append(d)  # accounted for (and refused) like a file
                    elif not d.startswith("."):
                        keep.append(d)
                dirs[:] = keep
                for name in sorted(files):
                    fp = Path(root) / name
                    yield fp, str(fp)
        else:
            yield p, str(given)


def _digest(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@cache
def _prepared(backend: Any) -> bool:
    """Import a backend's heavy modules once in the parent, so forked children start warm."""
    prepare = getattr(backend, "prepare", None)
    if prepare is not None:
        try:
            prepare()
        except ImportError:
            return False
    return True


def _preflight(path: Path, root: Path | None) -> int:
    """Checks before any byte is read; returns the size. Raises IngestError with the reason."""
    if path.name.startswith("."):
        raise IngestError("hidden file (name starts with '.'); not read")
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise IngestError("broken or looping symlink") from None
        if root is not None and not target.is_relative_to(root.resolve()):
            raise IngestError("symlink points outside the input folder; not followed")
        if target.is_dir():
            raise IngestError("symlink to a folder; not followed")
    if not path.exists():
        raise IngestError("file not found")
    if not path.is_file():
        raise IngestError("not a regular file (device, pipe or folder)")
    size = path.stat().st_size
    if size == 0:
        raise IngestError("empty file")
    return size


def _scale(limits: Limits) -> Limits:
    scale = float(_options().get("timeout_scale", 1.0))
    return Limits(timeout=limits.timeout * scale, memory_mb=limits.memory_mb)


def ingest_all(path: Path, source: str | None = None, root: Path | None = None, *,
               config: dict[str, Any] | None = None, _depth: int = 1) -> list[Document]:
    """Every document one input file holds; never raises for a bad file (it comes back rejected).

    One Document for most formats; one per member for a ZIP (source ``archive.zip/member``), one
    per row for a spreadsheet of reports (source ``table.xlsx/row-key``). Each has ``doc_id`` set.
    """
    path = Path(path)
    source = source if source is not None else str(path)
    opts = config if config is not None else _options()
    doc = Document(doc_id="", source=source)
    try:
        size = _preflight(path, root)
        backend = backend_for(path)
        if backend is None:
            with path.open("rb") as fh:
                head = fh.read(16)
            what = next((w for m, w in _MAGIC if head.startswith(m)), "")
            raise IngestError(f"unsupported file type '{path.suffix or '(no extension)'}'"
                              + (f" (content looks like {what})" if what else ""))
        doc.format = backend.name
        limit = MAX_BYTES_BY_FORMAT.get(backend.name, MAX_BYTES)
        if size > limit:
            raise IngestError(f"file too large ({size / 2**20:.0f} MB; limit {limit // 2**20} MB for {backend.name})")
        with path.open("rb") as fh:
            head = fh.read(4096)
        if not backend.accepts(path, head) and _is_html(head) and backend.name in ("doc", "xlsx", "txt"):
            # office systems export web pages named .doc/.xls: read them as what they are
            backend = next(b for b in BACKENDS if b.name == "html")
            doc.format = backend.name
            doc.warnings.append(f"named {path.suffix} but is a web page; read as HTML")
        if not backend.accepts(path, head):
            what = next((w for m, w in _MAGIC if head.startswith(m)), "")
            if what == "an old Office file" and path.suffix.lower() in (".docx", ".xlsx", ".pptx"):
                raise IngestError(f"password-protected Office file (or an old format renamed to {path.suffix})")
            if what:
                raise IngestError(f"content is {what}, not {backend.name} as the name ({path.suffix}) says")
            raise IngestError(f"content is not {backend.name} (file name says {path.suffix})")
        if getattr(backend, "multi", False):  # archives: members are ingested one by one
            return backend.ingest(path, source, _depth, opts, ingest_all, MAX_BYTES_BY_FORMAT["pdf"])
        data_id = stable_id(source, str(size), _digest(path))
        isolated = getattr(backend, "isolated", False) and opts.get("isolate", True)
        limits = _scale(getattr(backend, "limits", Limits()))
        if hasattr(backend, "convert_all"):
            table_cfg = dict(opts.get("table", {}))
            if isolated and _prepared(backend):
                docs = run_isolated(backend.convert_all, path, source, table_cfg, timeout=limits.timeout,
                                    memory_mb=limits.memory_mb)
            else:
                docs = backend.convert_all(path, source, table_cfg)
            for d in docs:
                d.doc_id = stable_id(data_id, d.source)
            return docs
        if isolated and _prepared(backend):
            doc = run_isolated(backend.convert, path, doc, timeout=limits.timeout, memory_mb=limits.memory_mb)
        else:
            backend.convert(path, doc)
        doc.doc_id = data_id
        return [doc]
    except IngestError as e:
        doc.reject(str(e))
    except MemoryError:
        doc.reject("ran out of memory reading the file")
    except RecursionError:
        doc.reject("document nests too deeply to read")
    except Exception as e:  # a parser bug must not stop the batch
        doc.reject(f"could not be read: {type(e).__name__}: {str(e)[:200]}")
    doc.doc_id = doc.doc_id or stable_id(source)
    return [doc]


def ingest_file(path: Path, source: str | None = None, root: Path | None = None) -> Document:
    """Read one file into a Document; never raises for a bad file (it comes back rejected).

    For inputs holding several documents (ZIP, spreadsheet of reports) this is the first one; use
    ``ingest_all`` to get them all.
    """
    return ingest_all(path, source, root)[0]


__all__ = ["BACKENDS", "Backend", "IngestError", "configure", "discover", "ingest_all", "ingest_file",
           "backend_for"]
