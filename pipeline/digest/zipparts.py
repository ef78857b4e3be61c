"""ZIP entries assembled from separately compressed fragments, without decompressing them.

Issue 8: tables.xlsx and corpus.qdpx are made of per-file pieces (a file's rows of the sentences
sheet, its TextSource XML) compressed once, cached with the file, and concatenated on every rerun.

* A raw deflate stream ended with ``Z_FULL_FLUSH`` stops at a byte boundary with an empty stored
  block and no back-references beyond itself, so such streams concatenate into one valid stream
  (what pigz does) once a final block is appended (:data:`FINAL_BLOCK`).
* Small pieces made at assembly time (a sheet's head and tail) go in as *stored* deflate blocks
  (:func:`stored`): no compressor at all.
* The entry's CRC-32 is combined from the pieces' CRCs and lengths (:func:`crc32_combine`, GF(2)
  arithmetic as zlib 1.2.12+ does it; Python's zlib lacks it), so the data is never read again.
* :class:`ZipWriter` writes the container itself (fixed 1980 timestamps: byte-identical output),
  ZIP64 records only when sizes or offsets need them.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

LEVEL = 1  # XML of many similar rows: level 1 is ~3x faster than 6 and ~15 % bigger
POLY = 0xEDB88320  # CRC-32 (reflected)
FINAL_BLOCK = b"\x03\x00"  # an empty final block with fixed codes (what Z_FINISH adds on its own)
DOS_1980 = (0, (1 << 5) | 1)  # time 00:00:00, date 1980-01-01 (as XlsxWriter writes)
ZIP64_LIMIT = 0xFFFFFFFF
WRITE_BATCH = 1024  # pieces per writev (Linux's IOV_MAX)
WRITE_BYTES = 16 << 20  # and at most this much held for one


def _multmodp(a: int, b: int) -> int:
    """a(x)·b(x) modulo the CRC polynomial (bit-reflected: bit 31 is x^0)."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    table, p = [], 1 << 30  # x^1
    table.append(p)
    for _ in range(31):
        p = _multmodp(p, p)
        table.append(p)
    return table


_X2N = _x2n_table()  # x^(2^n) mod p


_ZEROS = memoryview(bytes(1 << 16))
ZLIB_SHIFT_MAX = 1 << 20  # lengths up to which zlib computes the shift (~7 GB/s: ≤ 0.15 ms)


def crc32_shift(length: int) -> int:
    """x^(8·length) mod p: the operator that moves a CRC past ``length`` bytes (store it with a
    fragment and combining costs one multiplication).

    Moving a raw CRC register past zero bytes multiplies it by x^8 per byte, so zlib's own CRC of
    ``length`` zero bytes (its pre- and post-inversion undone) started from x^0 is that operator:
    ~5 µs for a 40 kB block, where the Python square-and-multiply below takes ~30 µs."""
    if length <= ZLIB_SHIFT_MAX:
        register = 0x7FFFFFFF  # ~x^0: zlib inverts the value it starts from
        while length > 0:
            n = min(length, len(_ZEROS))
            register = zlib.crc32(_ZEROS[:n], register)
            length -= n
        return ~register & 0xFFFFFFFF
    p, k = 1 << 31, 3  # x^0; bytes → bits: 2^3
    while length:
        if length & 1:
            p = _multmodp(_X2N[k & 31], p)
        length >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int, shift: int | None = None) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B) (``shift`` = crc32_shift(len2) when known)."""
    op = crc32_shift(len2) if shift is None else shift
    return _multmodp(op, crc1) ^ crc2


def _multmodp_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_multmodp` elementwise on uint64 arrays (values < 2^32)."""
    p = np.zeros_like(b)
    m = 1 << 31
    for _ in range(32):
        p ^= np.where(a & m, b, 0)
        b = np.where(b & 1, (b >> 1) ^ POLY, b >> 1)
        m >>= 1
    return p


TREE_MIN = 1024  # pieces from which combining in numpy beats the Python loop (~7 µs a piece)


def crc32_concat(crcs: list[int], shifts: list[int]) -> int:
    """CRC-32 of pieces joined in order from their CRCs and crc32_shift(size)s.

    Issue 8: an xlsx of a season has ~13,000 pieces; one Python :func:`_multmodp` each cost ~0.1 s
    of GIL. Combining is associative ((c1, s1)·(c2, s2) = (c1·s2 ^ c2, s1·s2)), so pairs are combined
    level by level as numpy arrays: ~14 levels of 32 vector steps. Same value as the sequential fold."""
    if not crcs:
        return 0
    if len(crcs) < TREE_MIN:
        crc = crcs[0]
        for c, s in zip(crcs[1:], shifts[1:], strict=True):
            crc = _multmodp(s, crc) ^ c
        return crc
    c = np.array(crcs, dtype=np.uint64)
    s = np.array(shifts, dtype=np.uint64)
    while len(c) > 1:
        odd = len(c) % 2
        c1, s1, c2, s2 = c[0:len(c) - odd:2], s[0:len(s) - odd:2], c[1::2], s[1::2]
        nc = _multmodp_np(s2, c1) ^ c2
        ns = _multmodp_np(s1, s2)
        if odd:
            nc, ns = np.append(nc, c[-1]), np.append(ns, s[-1])
        c, s = nc, ns
    return int(c[0])


X0 = 1 << 31  # x^0 (bit-reflected): the shift past no bytes


def crc32_concat_many(sequences: list[tuple[list[int], list[int]]]) -> list[tuple[int, int]]:
    """(CRC-32, shift) of each sequence of pieces joined (its crcs, shifts), for many short ones at
    once: one numpy tree over a table of them, each padded with empty pieces (CRC 0, shift x^0,
    which change nothing). A rerun's new block groups: ~250 of ~13 pieces, ~15 ms one by one."""
    if not sequences:
        return []
    width = max(1, *(len(c) for c, _ in sequences))
    c = np.zeros((len(sequences), width), dtype=np.uint64)
    s = np.full((len(sequences), width), X0, dtype=np.uint64)
    for i, (crcs, shifts) in enumerate(sequences):
        c[i, :len(crcs)] = crcs
        s[i, :len(shifts)] = shifts
    while c.shape[1] > 1:
        if c.shape[1] % 2:
            c = np.hstack([c, np.zeros((len(c), 1), dtype=np.uint64)])
            s = np.hstack([s, np.full((len(s), 1), X0, dtype=np.uint64)])
        c, s = _multmodp_np(s[:, 1::2], c[:, 0::2]) ^ c[:, 1::2], _multmodp_np(s[:, 0::2], s[:, 1::2])
    return list(zip(c[:, 0].tolist(), s[:, 0].tolist(), strict=True))


@dataclass(frozen=True)
class Deflated:
    """A piece of an entry: raw deflate data ending on a byte boundary (never final), the CRC-32
    and length of what it inflates to."""

    data: bytes | memoryview  # (a view: a slice of a bigger buffer, e.g. a memo entry's)
    crc: int
    size: int
    shift: int = -1  # crc32_shift(size), computed once with the piece (-1: not known)


def deflate(raw: bytes | memoryview, level: int = LEVEL) -> Deflated:
    """Compress one fragment so it can be concatenated with others (Z_FULL_FLUSH, not final)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return Deflated(c.compress(raw) + c.flush(zlib.Z_FULL_FLUSH), zlib.crc32(raw), len(raw), crc32_shift(len(raw)))


def stored(raw: bytes) -> Deflated:
    """Bytes as stored (uncompressed) deflate blocks: for small pieces made at assembly time."""
    out = bytearray()
    for i in range(0, len(raw), 0xFFFF):
        n = min(0xFFFF, len(raw) - i)
        out += struct.pack("<BHH", 0, n, n ^ 0xFFFF)
        out += raw[i:i + n]
    return Deflated(bytes(out), zlib.crc32(raw), len(raw), crc32_shift(len(raw)))


class ZipWriter:
    """A ZIP archive written from finished entries and from entries assembled piece by piece."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.entries: list[tuple[bytes, int, int, int, int, int]] = []  # name, method, crc, csize, usize, offset

    def _local_header(self, name: bytes, method: int, crc: int, csize: int, usize: int, room: bool) -> None:
        # sizes past 4 GiB: the ZIP64 extra field carries them (the header fields say 0xFFFFFFFF).
        # ``room``: an entry written before its sizes are known reserves the 20 bytes of that field
        # as an OOXML growth hint (0xA220, which readers skip) and uses them only when needed
        big = csize >= ZIP64_LIMIT or usize >= ZIP64_LIMIT
        if big:
            extra = struct.pack("<HHQQ", 1, 16, usize, csize)
        else:
            extra = struct.pack("<HHHH12x", 0xA220, 16, 0xA028, 0) if room else b""
        self._put(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45 if big else 20, 0, method, *DOS_1980,
                              crc, ZIP64_LIMIT if big else csize, ZIP64_LIMIT if big else usize,
                              len(name), len(extra)) + name + extra)

    def write(self, name: str, raw: bytes, level: int = 6) -> None:
        """A whole entry from its bytes (deflated unless tiny)."""
        encoded = name.encode("utf-8")
        crc = zlib.crc32(raw)
        if len(raw) < 64:
            method, data = 0, raw
        else:
            c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
            method, data = 8, c.compress(raw) + c.flush()
        offset = self.fh.tell()
        self._local_header(encoded, method, crc, len(data), len(raw), False)
        self._put(data)
        self.entries.append((encoded, method, crc, len(data), len(raw), offset))

    def write_pieces(self, name: str, pieces: Iterable[Deflated]) -> None:
        """A deflated entry from pieces in order, each read once (lazy sources are dropped as we
        go, a batch at a time), ended here with an empty final block; the header is patched once
        sizes are known."""
        encoded = name.encode("utf-8")
        offset = self.fh.tell()
        self._local_header(encoded, 8, 0, 0, 0, True)
        start = self.fh.tell()
        size = 0
        crcs: list[int] = []
        shifts: list[int] = []
        batch: list[bytes | memoryview] = []
        held = 0
        for p in pieces:
            if not p.size:
                continue
            batch.append(p.data)
            held += len(p.data)
            if len(batch) >= WRITE_BATCH or held >= WRITE_BYTES:
                self._write_all(batch)
                batch, held = [], 0
            crcs.append(p.crc)
            shifts.append(crc32_shift(p.size) if p.shift < 0 else p.shift)
            size += p.size
        self._write_all(batch)
        crc = crc32_concat(crcs, shifts)  # combined once at the end: the header is patched anyway
        self._put(FINAL_BLOCK)
        end = self.fh.tell()
        self.fh.seek(offset)
        self._local_header(encoded, 8, crc, end - start, size, True)
        self.fh.seek(end)
        self.entries.append((encoded, 8, crc, end - start, size, offset))

    def _write_all(self, chunks: list[bytes | memoryview]) -> None:
        """Chunks written in order: to an unbuffered OS file in one ``writev`` per WRITE_BATCH of
        them (a season's tables.xlsx is ~4,000 pieces; a system call each cost ~20 ms more)."""
        if isinstance(self.fh, io.FileIO) and hasattr(os, "writev"):
            fd = self.fh.fileno()
            for i in range(0, len(chunks), WRITE_BATCH):
                group = chunks[i:i + WRITE_BATCH]
                done = os.writev(fd, group)
                if done < sum(map(len, group)):  # (a short write, rare on files: the rest in order)
                    self._put(b"".join(group)[done:])
            return
        for c in chunks:
            self._put(c)

    def _put(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:  # (an unbuffered file may take less than it is given)
            view = view[self.fh.write(view):]

    def close(self) -> None:
        cd_start = self.fh.tell()
        for name, method, crc, csize, usize, offset in self.entries:
            fields = [(usize, usize >= ZIP64_LIMIT), (csize, csize >= ZIP64_LIMIT), (offset, offset >= ZIP64_LIMIT)]
            extra_vals = [v for v, big in fields if big]
            extra = struct.pack(f"<HH{len(extra_vals)}Q", 1, 8 * len(extra_vals), *extra_vals) if extra_vals else b""
            us, cs, off = (ZIP64_LIMIT if big else v for v, big in fields)
            version = 45 if extra else 20
            self._put(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", version, version, 0, method, *DOS_1980,
                                  crc, cs, us, len(name), len(extra), 0, 0, 0, 0, off) + name + extra)
        cd_end = self.fh.tell()
        n, cd_size = len(self.entries), cd_end - cd_start
        if n >= 0xFFFF or cd_size >= ZIP64_LIMIT or cd_start >= ZIP64_LIMIT:
            self._put(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size, cd_start))
            self._put(struct.pack("<4sIQI", b"PK\x06\x07", 0, cd_end, 1))
            self._put(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                                  min(cd_size, ZIP64_LIMIT), min(cd_start, ZIP64_LIMIT), 0))
        else:
            self._put(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, cd_size, cd_start, 0))
