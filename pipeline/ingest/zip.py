"""ZIP archives: every member is ingested as its own document, source ``archive.zip/member``;
archives inside archives are opened too (to a limit).

Nothing is extracted where its name points: each member's bytes are read with a hard size cap
(whatever the header claims) into a private temporary folder under a generated name, and members
whose names climb out (``../``, absolute paths), symlinks, encrypted members and bombs are rejected,
each as its own row.
"""

from __future__ import annotations

import re
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..model import Document, stable_id
from .base import MAX_UNPACKED, IngestError, check_zip, read_member

#: archives inside archives are opened this deep (the outer archive is depth 1)
MAX_DEPTH = 3


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author wrote it: Chinese Windows tools store GBK without the
    UTF-8 flag, which zipfile shows as cp437 mojibake."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("gb18030")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def unsafe_reason(name: str, info: zipfile.ZipInfo) -> str:
    """Why a member must not be read ('' when it is fine)."""
    if "\x00" in name:
        return "member name contains a NUL byte"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "member has an absolute path (path traversal); not extracted"
    if ".." in PurePosixPath(norm).parts:
        return "member path climbs out of the archive ('..', path traversal); not extracted"
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        return "member is a symbolic link; not followed"
    if info.flag_bits & 0x1:
        return "member is encrypted (password required)"
    return ""


class ZipBackend:
    name = "zip"
    suffixes = (".zip",)
    isolated = False  # reads members itself (capped); each member's parser is isolated on its own
    multi = True

    def accepts(self, path: Path, head: bytes) -> bool:
        return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))

    def ingest(self, path: Path, source: str, depth: int, config: dict[str, Any],
               ingest_all: Any, max_member: int) -> list[Document]:
        if depth > MAX_DEPTH:
            raise IngestError(f"archive nested more than {MAX_DEPTH} levels deep; not opened")
        try:
            z = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise IngestError(f"corrupt ZIP archive ({e})") from None
        docs: list[Document] = []
        with z, tempfile.TemporaryDirectory(prefix="huibian-zip-") as tmp:
            check_zip(z, path.stat().st_size, "ZIP archive")
            members = [i for i in z.infolist() if not i.is_dir()]
            if not members:
                raise IngestError("ZIP archive holds no files")
            total = 0
            for k, info in enumerate(members):
                name = member_name(info)
                msource = f"{source}/{name}"
                reason = unsafe_reason(name, info)
                if not reason and PurePosixPath(name).name.startswith("."):
                    reason = "hidden file in archive; not read"
                if reason:
                    docs.append(Document(doc_id=stable_id(msource), source=msource, format="zip-member")
                                .reject(reason))
                    continue
                try:
                    data = read_member(z, info, max_member)
                    total += len(data)
                    if total > MAX_UNPACKED:
                        raise IngestError(f"archive unpacks beyond {MAX_UNPACKED // 2**20} MB "
                                          "(possible ZIP bomb); rest not read")
                except IngestError as e:
                    docs.append(Document(doc_id=stable_id(msource), source=msource, format="zip-member")
                                .reject(str(e)))
                    if total > MAX_UNPACKED:
                        break
                    continue
                except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
                        ValueError) as e:  # bad CRC, unsupported compression, truncated member
                    docs.append(Document(doc_id=stable_id(msource), source=msource, format="zip-member")
                                .reject(f"member could not be unpacked ({type(e).__name__}: {e})"))
                    continue
                suffix = re.sub(r"[^A-Za-z0-9.]", "", PurePosixPath(name.replace("\\", "/")).suffix)[:16]
                target = Path(tmp) / f"m{k:05d}{suffix}"
                target.write_bytes(data)
                del data
                docs += ingest_all(target, msource, None, config=config, _depth=depth + 1)
                target.unlink(missing_ok=True)
        return docs
