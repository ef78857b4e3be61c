"""Legacy Word (.doc), WPS (.wps), RTF and OpenDocument text: converted to DOCX by LibreOffice
headless, then read like any DOCX.  Legacy Excel (.xls, .et) goes to XLSX the same way.

The input is copied under a fixed safe name into a private temporary folder first, so a file name
with a newline or a leading dash never reaches the command line, and each conversion gets its own
LibreOffice profile (parallel conversions do not fight over one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..model import Document
from .base import IngestError, Limits
from .docx import DocxBackend

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: LibreOffice gets this long per file
TIMEOUT = 120.0


def soffice() -> str | None:
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    for p in ("/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice",
              "/Applications/LibreOffice.app/Contents/MacOS/soffice"):
        if Path(p).exists():
            return p
    return None


def convert_with_soffice(path: Path, target: str, workdir: Path, timeout: float = TIMEOUT) -> Path:
    """``path`` → ``workdir/input.<target>`` with LibreOffice; IngestError with the reason if not."""
    exe = soffice()
    if exe is None:
        raise IngestError(f"{path.suffix} files need LibreOffice to convert, and it is not installed "
                          "(scripts/install-system-deps.sh installs it)")
    src = workdir / f"input{path.suffix.lower()}"
    shutil.copyfile(path, src)
    profile = workdir / "profile"
    cmd = [exe, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", "--nolockcheck",
           "--convert-to", target, "--outdir", str(workdir), str(src)]
    env = {**os.environ, "HOME": str(workdir)}  # no writes to the user's home
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise IngestError(f"LibreOffice took longer than {timeout:g} s to convert the file (stopped)") from None
    out = workdir / f"input.{target.split(':')[0]}"
    if not out.exists() or out.stat().st_size == 0:
        err = (proc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        detail = err[-1][:200] if err else f"exit code {proc.returncode}"
        raise IngestError(f"LibreOffice could not convert the file ({detail}); corrupt or not a document")
    return out


class LegacyWordBackend:
    name = "doc"
    suffixes = (".doc", ".wps", ".wpt", ".dot", ".rtf", ".odt")
    isolated = True
    limits = Limits(timeout=TIMEOUT + 60, memory_mb=None)  # soffice is its own process; time bounds it

    def accepts(self, path: Path, head: bytes) -> bool:
        suffix = path.suffix.lower()
        if suffix == ".rtf":
            return head.startswith(b"{\\rtf")
        if suffix == ".odt":
            return head.startswith(b"PK\x03\x04")
        # .doc saved by some tools is really RTF or DOCX; LibreOffice reads all of them
        return head.startswith((OLE, b"{\\rtf", b"PK\x03\x04"))

    def convert(self, path: Path, doc: Document) -> Document:
        doc.format = path.suffix.lower().lstrip(".")
        with tempfile.TemporaryDirectory(prefix="huibian-soffice-") as tmp:
            out = convert_with_soffice(path, "docx:MS Word 2007 XML", Path(tmp))
            DocxBackend().convert(out, doc)
        doc.meta["converted_by"] = "libreoffice"
        return doc
