"""The season on disk: one cached entry per input file, read back a piece at a time.

A run never holds the season's sentences in memory.  Each input file's result is an *entry* — a
folder in the cache holding the file's small tables (documents, articles, toc), its sentences as an
Arrow IPC file (memory-mapped when read, so touching a column costs only what is read) and, per
version of the season-level code, its *parts*: what the analysis and the digest need from that one
file (``pipeline.analyze.document_parts``, ``pipeline.digest.document_parts``).  The season-level
stages then only combine parts; cross-file work worth keeping (problem grouping blocks) goes into a
:class:`FolderMemo` keyed by content.  A rerun after one file changed therefore re-does that file's
entry and parts, and the combines, nothing else.

Layout under the cache root::

    <pipeline fingerprint[:16]>/<key[:2]>/<key>/entry.pkl          small tables, warnings, timings
                                               /sentences.arrow    the file's sentences
                                               /parts-<ver>.bin    parts of one parts version
    memo-<parts version[:16]>/<k[:2]>/<k>.pkl                      season-level memo

Everything is written to a temporary name and renamed, so a run killed at any moment leaves whole
entries or none.  An unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa

from .outputs import replace

#: the file's sentences inside a parts mapping (INTERFACE: parts[i]["sentences"] -> pa.Table)
SENTENCES = "sentences"
#: namespace of parts the run itself keeps (the corrected sentences of a corrected file)
RUN_NS = "run"
_HEADER = struct.Struct("<Q")


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """``path`` replaced at once by ``data``, or by what ``data(fh)`` writes into the file."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
        if replace(Path(tmp), path):  # exchanged: the previous version is at tmp now
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_arrow(table: pa.Table, path: Path) -> None:
    """An Arrow IPC file, uncompressed: read back by memory map without copying."""
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    atomic_write(path, sink.getvalue())


def read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


# ---------------------------------------------------------------- parts blobs

def pack_parts(parts: Mapping[str, Mapping[str, Any]]) -> bytes:
    """{namespace: {name: value}} → one blob: a pickled index, then each value pickled on its own,
    so a reader unpickles only the values it asks for."""
    index: dict[tuple[str, str], tuple[int, int]] = {}
    chunks: list[bytes] = []
    offset = 0
    for ns in sorted(parts):
        for name in sorted(parts[ns]):
            data = pickle.dumps(parts[ns][name], protocol=pickle.HIGHEST_PROTOCOL)
            index[(ns, name)] = (offset, len(data))
            chunks.append(data)
            offset += len(data)
    head = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(head)) + head + b"".join(chunks)


class PartsBlob:
    """Random access into a blob written by :func:`pack_parts` (its index, and the values a
    long-lived process holds for it, from :data:`RESIDENT` while the file is unchanged)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._values: dict[tuple[str, str], Any] = {}
        held = _resident(path)
        if held is not None:
            self.index, self._base, self._values = held
            return
        with path.open("rb") as fh:
            (n,) = _HEADER.unpack(fh.read(_HEADER.size))
            self.index: dict[tuple[str, str], tuple[int, int]] = pickle.loads(fh.read(n))
        self._base = _HEADER.size + n

    def names(self, ns: str) -> list[str]:
        return [name for (n, name) in self.index if n == ns]

    def get(self, ns: str, name: str) -> Any:
        if (ns, name) in self._values:
            return self._values[(ns, name)]
        offset, length = self.index[(ns, name)]
        with self.path.open("rb") as fh:
            fh.seek(self._base + offset)
            return pickle.loads(fh.read(length))


# ---------------------------------------------------------------- entries kept in memory

#: files held by a long-lived process (the warm server, pipeline/server.py) for the runs it
#: forks: path → ((inode, mtime, size) when read, value) — an entry.pkl's small tables, or a
#: parts blob's (index, offset of its values, {part: value} of :data:`RESIDENT_PARTS`). Files are
#: replaced by a rename, never rewritten in place, so an unchanged stat means unchanged bytes.
RESIDENT: dict[Path, tuple[tuple[int, int, int], Any]] = {}
#: the part values a rerun reads for every file whatever changed and that take longest to read
#: (the copy search's band keys and texts; the page's and Word file's text): held with the
#: blob's index; the rest is read when needed. (The tables.xlsx rows too saved ~0.1 s a rerun,
#: but every page a served run touches counts in its resident memory: ~30 MiB more of it.)
RESIDENT_PARTS = (("analyze", "copies"), ("digest", "body"))


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def _resident(path: Path) -> Any:
    """What :data:`RESIDENT` holds for ``path`` if the file is still the one read, else None."""
    held = RESIDENT.get(path)
    return held[1] if held is not None and held[0] == _stat_key(path) else None


def keep_resident(folders: Sequence[Path], blobs: Sequence[Path] | None = None) -> int:
    """Hold these entries' small tables and their parts' :data:`RESIDENT_PARTS` in
    :data:`RESIDENT` (each file read once while unchanged; every other entry dropped); returns
    how many files were read now. Held values are shared by every run forked from this process,
    so their arrays are made read-only: a combine changing one in place fails loudly.
    ``blobs``: the parts files the run used (else each folder's are looked for)."""
    wanted = {Path(f) / "entry.pkl" for f in folders}
    if blobs is None:
        for f in folders:
            wanted.update(Path(f).glob("parts-*.bin"))
    else:
        wanted.update(Path(b) for b in blobs)
    for path in list(RESIDENT):
        if path not in wanted:
            del RESIDENT[path]
    read = 0
    for path in sorted(wanted):
        try:
            key = _stat_key(path)
            if path in RESIDENT and RESIDENT[path][0] == key:
                continue
            if path.name == "entry.pkl":
                with path.open("rb") as fh:
                    RESIDENT[path] = (key, pickle.load(fh))
            else:
                blob = PartsBlob(path)
                values = {k: _read_only(blob.get(*k)) for k in RESIDENT_PARTS if k in blob.index}
                RESIDENT[path] = (key, (blob.index, blob._base, values))
            read += 1
        except Exception:  # noqa: BLE001 - gone or damaged: the run reads (and judges) it itself
            RESIDENT.pop(path, None)
    return read


def _read_only(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, Mapping):
        for v in value.values():
            _read_only(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _read_only(v)
    return value


# ---------------------------------------------------------------- entries

class Entry:
    """One input file's cached result (a folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._small: dict[str, Any] | None = None

    def exists(self) -> bool:
        return (self.folder / "entry.pkl").is_file() and (self.folder / "sentences.arrow").is_file()

    def load(self) -> dict[str, Any]:
        """{"tables": {documents, articles, toc}, "warnings": [...], "timings": {...}} — small,
        so kept once read."""
        if self._small is None:
            path = self.folder / "entry.pkl"
            self._small = _resident(path)
            if self._small is None:
                with path.open("rb") as fh:
                    self._small = pickle.load(fh)
        return self._small

    def sentences(self) -> pa.Table:
        return read_arrow(self.folder / "sentences.arrow")

    def parts_path(self, version: str) -> Path:
        return self.folder / f"parts-{version[:24]}.bin"

    def parts(self, version: str) -> PartsBlob | None:
        try:
            return PartsBlob(self.parts_path(version))
        except (OSError, EOFError, pickle.UnpicklingError, struct.error):
            return None

    def put_parts(self, version: str, parts: Mapping[str, Mapping[str, Any]]) -> PartsBlob:
        path = self.parts_path(version)
        atomic_write(path, pack_parts(parts))
        for old in self.folder.glob("parts-*.bin"):  # other versions can never be read again
            if old != path:
                old.unlink(missing_ok=True)
        return PartsBlob(path)


class EntryStore:
    """Entries by key under ``root/<folder name>``; ``put`` replaces an entry atomically."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.folder = root / name

    def entry(self, key: str) -> Entry:
        return Entry(self.folder / key[:2] / key)

    def get(self, key: str) -> Entry | None:
        e = self.entry(key)
        try:
            if e.exists():
                e.load()  # a damaged entry is a miss (and is rewritten)
                return e
        except Exception:  # noqa: BLE001 - unreadable for any reason: redo the file
            pass
        return None

    def put(self, key: str, result: Mapping[str, Any], parts: Mapping[str, Any] | None = None,
            parts_version: str | None = None) -> Entry:
        """Write ``result`` ({"tables": {name: pa.Table}, "warnings", "timings"}) as an entry."""
        final = self.entry(key)
        final.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.folder.parent))
        try:
            tables = dict(result["tables"])
            sentences = tables.pop(SENTENCES, None)
            if sentences is None:
                sentences = pa.table({})
            write_arrow(sentences, tmp / "sentences.arrow")
            small = {"tables": tables, "warnings": list(result.get("warnings", [])),
                     "timings": dict(result.get("timings", {}))}
            (tmp / "entry.pkl").write_bytes(pickle.dumps(small, protocol=pickle.HIGHEST_PROTOCOL))
            if parts is not None and parts_version is not None:
                (tmp / Entry(tmp).parts_path(parts_version).name).write_bytes(pack_parts(parts))
            if final.folder.exists():  # a damaged or stale entry: replaced whole
                shutil.rmtree(final.folder, ignore_errors=True)
            try:
                os.replace(tmp, final.folder)
            except OSError:
                if not final.exists():
                    raise
                # another run sharing the cache wrote the same entry meanwhile: same bytes in, same
                # entry out, so theirs is kept
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def prune(self, keep: set[str]) -> None:
        """Drop every folder under the root except those named in ``keep`` (other versions)."""
        if not self.root.is_dir():
            return
        for d in self.root.iterdir():
            if d.is_dir() and d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- the season's parts

def file_sentences(entry: Entry, blob: PartsBlob | None) -> pa.Table:
    """A file's sentences as the season sees them: as corrected by the editors when they were."""
    if blob is not None and (RUN_NS, SENTENCES) in blob.index:
        return blob.get(RUN_NS, SENTENCES)
    return entry.sentences()


def sentences_identity(entry: Entry, blob: PartsBlob | None) -> str:
    """What :func:`file_sentences` gives depends on, for a cached entry: the entry (its folder is
    named by the file's content and the pipeline) and, when corrected, the correction's version."""
    corrected = blob is not None and (RUN_NS, SENTENCES) in blob.index
    return entry.folder.name + (f"\x1f{blob.path.name}" if corrected and blob is not None else "")


class FileParts(Mapping[str, Any]):
    """One file's parts of one namespace, loaded on access (nothing is kept), plus "sentences"."""

    def __init__(self, entry: Entry, blob: PartsBlob | None, ns: str) -> None:
        self._entry, self._blob, self._ns = entry, blob, ns
        self._names = blob.names(ns) if blob is not None else []

    def __getitem__(self, name: str) -> Any:
        if name == SENTENCES:
            return file_sentences(self._entry, self._blob)
        if name not in self._names:
            raise KeyError(name)
        assert self._blob is not None
        return self._blob.get(self._ns, name)

    def __iter__(self) -> Iterator[str]:
        yield from self._names
        yield SENTENCES

    def __len__(self) -> int:
        return len(self._names) + 1


class SeasonParts(Sequence[Mapping[str, Any]]):
    """The season's files, in input order, as seen by one stage's combine (one namespace)."""

    def __init__(self, entries: Sequence[Entry], blobs: Sequence[PartsBlob | None], ns: str) -> None:
        self._entries, self._blobs, self._ns = entries, blobs, ns

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i: int) -> FileParts:  # type: ignore[override]
        if isinstance(i, slice):
            raise TypeError("SeasonParts does not slice")
        return FileParts(self._entries[i], self._blobs[i], self._ns)

    def __iter__(self) -> Iterator[FileParts]:
        for i in range(len(self)):
            yield self[i]


# ---------------------------------------------------------------- the memo

class FolderMemo(MutableMapping[str, Any]):
    """A persistent memo: one pickle per key (any string; stored under its hash), atomic writes.

    Reading an entry marks it used (its mtime is the last run that needed it), so :meth:`prune`
    can keep the memo near one run's working set: each rerun writes new entries for what changed
    (a problem label's table and grouping state is ~20 MB at 1,000 reports) and the old ones
    would otherwise pile up season after season."""

    #: what :meth:`prune` keeps besides this run's entries, at least (bytes)
    MIN_SPARE = 256 << 20

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0
        self._used: set[Path] = set()

    def _path(self, key: str) -> Path:
        h = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        return self.folder / h[:2] / f"{h}.pkl"

    def __getitem__(self, key: str) -> Any:
        try:
            with self._path(key).open("rb") as fh:
                value = pickle.load(fh)
        except Exception:  # noqa: BLE001 - missing or damaged: a miss
            self.misses += 1
            raise KeyError(key) from None
        self.hits += 1
        self._mark(self._path(key))
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # pickled straight into the file: no second copy of a 100 MB table in memory
            atomic_write(path, lambda fh: pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL))
            self._used.add(path)
        except OSError:
            pass  # a full disk costs speed next time, not this run's outputs

    def keep(self, key: str) -> None:
        """Mark an entry used by this run without reading it (state a later run needs)."""
        self._mark(self._path(key))

    def _mark(self, path: Path) -> None:
        if path not in self._used:
            self._used.add(path)
            try:
                os.utime(path)
            except OSError:
                pass

    def usage(self, since: tuple[int, int] = (0, 0)) -> tuple[int, int, frozenset[Path]]:
        """(hits, misses since ``since`` = (hits, misses) at some point, entries used): what a
        forked child hands back to the run's memo (:meth:`absorb`)."""
        return self.hits - since[0], self.misses - since[1], frozenset(self._used)

    def absorb(self, usage: tuple[int, int, frozenset[Path]]) -> None:
        """Count a forked child's :meth:`usage` as this memo's: its entries stay out of prune."""
        hits, misses, used = usage
        self.hits += hits
        self.misses += misses
        self._used |= used

    def prune(self, spare: float = 2.0) -> int:
        """Delete entries this run did not use, least recently used first, until what is left of
        them weighs at most ``spare`` × this run's own entries (and at least ``MIN_SPARE``): the
        memo stays within a few times a run's working set however many reruns a season has.
        Returns the bytes freed. A later run that needed a deleted entry recomputes it."""
        if not self.folder.is_dir():
            return 0
        used = other = 0
        others: list[tuple[float, int, Path]] = []
        for path in self.folder.glob("*/*.pkl"):
            try:
                st = path.stat()
            except OSError:
                continue
            if path in self._used:
                used += st.st_size
            else:
                others.append((st.st_mtime, st.st_size, path))
                other += st.st_size
        budget = max(int(used * spare), self.MIN_SPARE)
        freed = 0
        for _, size, path in sorted(others, key=lambda t: (t[0], str(t[2]))):
            if other - freed <= budget:
                break
            try:
                path.unlink()
                freed += size
            except OSError:
                continue
        return freed

    def __delitem__(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        raise TypeError("FolderMemo stores keys by hash and cannot list them")

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.rglob("*.pkl")) if self.folder.is_dir() else 0

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._path(key).is_file()


# ---------------------------------------------------------------- whole frames → per-file parts

def docs_from_frames(frames: Mapping[str, pd.DataFrame]) -> list[dict[str, pd.DataFrame]]:
    """A season's whole frames as per-file tables (the old whole-frame entry points' way into the
    parts path): sentences grouped by doc_id in order of first appearance, each with its
    documents, articles and toc rows. Rows of other files never leak into a file's tables."""
    s = frames.get(SENTENCES)
    if s is None or not isinstance(s, pd.DataFrame) or s.empty or "doc_id" not in s.columns:
        return []
    codes, doc_ids = pd.factorize(s["doc_id"], use_na_sentinel=False)
    if len(codes) > 1 and np.any(np.diff(codes) < 0):  # interleaved files: each one's rows together
        order = np.argsort(codes, kind="stable")
        s, codes = s.iloc[order], codes[order]
    bounds = np.r_[0, np.flatnonzero(np.diff(codes)) + 1, len(codes)]
    names = ("documents", "articles", "toc")
    small: dict[str, dict[Any, pd.DataFrame]] = {}
    for name in names:
        df = frames.get(name)
        if isinstance(df, pd.DataFrame) and "doc_id" in df.columns:
            small[name] = dict(iter(df.groupby("doc_id", sort=False, dropna=False)))
    empty = {name: (frames[name].iloc[:0] if name in small else pd.DataFrame()) for name in names}
    docs = []
    for i, d in enumerate(doc_ids):
        doc = {name: small.get(name, {}).get(d, empty[name]) for name in names}
        doc[SENTENCES] = s.iloc[bounds[i]:bounds[i + 1]]
        docs.append(doc)
    return docs


class FrameParts(Mapping[str, Any]):
    """One file's parts made from whole frames, with its "sentences" as the Arrow table a run
    would pass, converted from the file's rows only when asked for (never all files at once)."""

    def __init__(self, values: dict[str, Any], sentences: pd.DataFrame) -> None:
        self.values, self.sentences = values, sentences

    def __getitem__(self, key: str) -> Any:
        if key == SENTENCES:
            return pa.Table.from_pandas(self.sentences, preserve_index=False)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self.values, SENTENCES])

    def __len__(self) -> int:
        return len(self.values) + 1
