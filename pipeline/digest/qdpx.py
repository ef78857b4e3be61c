"""corpus.qdpx: the coded corpus as a REFI-QDA project (QualCoder, NVivo, ATLAS.ti, MAXQDA open it).

A .qdpx is a ZIP holding ``project.qde`` (XML, namespace urn:QDA-XML:project:1.0) and the sources
under ``sources/``. Each document becomes a TextSource whose text is the pipeline's Document.text
(sentence texts joined with "\\n" in order), each sentence a PlainTextSelection at its character
offsets, coded with its role and its theme; units become Cases.

Season scale (issue 8: ~450,000 sentences): nothing holds the whole project. ``project.qde`` is
written incrementally (lxml's ``xmlfile``) one TextSource at a time into a temporary file, each
source text goes into the ZIP as soon as its document is done, and selection/coding GUIDs are
derived arithmetically from the document's GUID rather than hashed one by one.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lxml import etree

from .. import __version__
from .common import ROLE_NAMES, ROLES, XML_ILLEGAL, clean_text, frame, map_unique, source_names, unit_name

NS = "urn:QDA-XML:project:1.0"
NSMAP = {None: NS}
_GUID_NS = uuid.UUID("6f1c3a52-8a43-4f0e-9a57-6b7e0f1d2c11")  # fixed: same corpus, same GUIDs
ROLE_COLORS = {"strength": "#2E7D32", "gap": "#C62828", "cause": "#EF6C00", "measure": "#1565C0"}
THEME_COLOR = "#6D4C41"
COLUMNS = ("doc_id", "idx", "text", "label", "theme", "unit", "start", "end")


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def guid(*parts: Any) -> str:
    return str(uuid.uuid5(_GUID_NS, "\x1f".join(map(str, parts)))).upper()


def child_guid(base: str, kind: int, slot: int, idx: int) -> str:
    """A GUID unique within a document's ``base`` GUID: its first 64 bits, then kind (1 selection,
    2 coding), the code's slot and the sentence index. Deterministic like :func:`guid` at a fraction
    of a SHA-1 per selection and coding."""
    h = f"{base.replace('-', '')[:16]}{kind:02X}{slot:02X}{idx & 0xFFFFFFFFFFFF:012X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _column(s: pd.DataFrame, name: str, default: Any) -> pd.Series:
    return s[name] if name in s.columns else pd.Series(default, index=s.index, dtype=object)


def _texts(s: pd.Series) -> pd.Series:
    """Sentence texts as clean strings; cleaned cell by cell only when the column needs it."""
    t = s.astype(object).where(s.notna(), "")
    t = t.astype(str)
    if XML_ILLEGAL.search("\n".join(t)):
        return t.map(clean_text)
    return t


def coded_sentences(sentences: pd.DataFrame, theme_codes: dict[str, str]) -> pd.DataFrame:
    """Needed columns only, in document order, with clean text, theme and unit resolved once."""
    s = sentences[[c for c in COLUMNS if c in sentences.columns]]
    s = s.assign(doc_id=s["doc_id"].astype(str), text=_texts(s["text"]),
                 theme=map_unique(_column(s, "theme", ""), lambda t: clean_text(t).strip()))
    s = s.assign(coded=s["label"].isin(ROLES).to_numpy() | s["theme"].isin(theme_codes).to_numpy())
    return s.sort_values(["doc_id", "idx"], kind="stable")


def source_texts(sentences: pd.DataFrame) -> Iterator[tuple[str, str, list[tuple[int, int, Any]]]]:
    """Per document (one at a time): doc_id, its text and each sentence's (start, end, row).

    The text is the sentences joined with "\\n" in idx order (what Document.text is). Offsets are the
    sentence's own start/end when they point at its text, else where it sits in the joined text.
    """
    has_span = "start" in sentences.columns and "end" in sentences.columns
    for doc_id, g in sentences.groupby("doc_id", sort=False):
        texts = g["text"].tolist()
        text = "\n".join(texts)
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
        pos = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        starts = g["start"].to_numpy(dtype="float64", na_value=np.nan) if has_span else None
        ends = g["end"].to_numpy(dtype="float64", na_value=np.nan) if has_span else None
        spans = []
        for i, (t, row) in enumerate(zip(texts, g.itertuples(index=False), strict=True)):
            p = int(pos[i])
            if starts is not None and not (np.isnan(starts[i]) or np.isnan(ends[i])):
                a, b = int(starts[i]), int(ends[i])
                if (a, b) != (p, p + len(t)) and text[a:b] == t:
                    spans.append((a, b, row))
                    continue
            spans.append((p, p + len(t), row))
        yield str(doc_id), text, spans


def _codebook(themes: list[str]) -> tuple[etree._Element, dict[str, str], dict[str, str]]:
    codebook = etree.Element(q("CodeBook"), nsmap=NSMAP)
    codes = etree.SubElement(codebook, q("Codes"))
    role_root = etree.SubElement(codes, q("Code"), {"guid": guid("code", "roles"), "name": "角色",
                                                    "isCodable": "false", "color": "#555555"})
    role_codes = {}
    for role in ROLES:
        role_codes[role] = guid("code", "role", role)
        c = etree.SubElement(role_root, q("Code"), {"guid": role_codes[role], "name": ROLE_NAMES[role],
                                                    "isCodable": "true", "color": ROLE_COLORS[role]})
        etree.SubElement(c, q("Description")).text = role
    theme_root = etree.SubElement(codes, q("Code"), {"guid": guid("code", "themes"), "name": "主题",
                                                     "isCodable": "false", "color": THEME_COLOR})
    theme_codes = {}
    for theme in themes:
        theme_codes[theme] = guid("code", "theme", theme)
        etree.SubElement(theme_root, q("Code"), {"guid": theme_codes[theme], "name": theme,
                                                 "isCodable": "true", "color": THEME_COLOR})
    return codebook, role_codes, theme_codes


def write_project(frames: dict[str, pd.DataFrame], meta: dict[str, Any], qde: Any, z: zipfile.ZipFile) -> None:
    """Stream project.qde into the binary file ``qde`` and each source text into ``z``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    user = guid("user", "huibian")
    sentences = frame(frames, "sentences", ("doc_id", "idx", "text", "label"))
    if sentences is None:
        sentences = pd.DataFrame(columns=["doc_id", "idx", "text", "label", "theme", "unit"])
    themes = sorted(set(map_unique(_column(sentences, "theme", ""), lambda t: clean_text(t).strip())) - {""})
    codebook, role_codes, theme_codes = _codebook(themes)
    s = coded_sentences(sentences, theme_codes)
    source_guid = {d: guid("source", d) for d in s["doc_id"].unique()}
    with etree.xmlfile(qde, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(q("Project"), {"name": clean_text(f"汇编 {meta.get('season', '')}"),
                                       "origin": f"huibian {__version__}", "creationDateTime": now},
                        nsmap=NSMAP):
            users = etree.Element(q("Users"), nsmap=NSMAP)
            etree.SubElement(users, q("User"), {"guid": user, "name": "huibian"})
            xf.write(users)
            xf.write(codebook)
            del codebook
            if "unit" in s.columns:  # the schema puts Cases before Sources
                coded = s[s["coded"] & (s["text"].str.len() > 0)]
                by_unit = coded.groupby(map_unique(coded["unit"], unit_name), sort=True)["doc_id"].unique()
                if len(by_unit):
                    cases = etree.Element(q("Cases"), nsmap=NSMAP)
                    for unit, doc_ids in by_unit.items():
                        case = etree.SubElement(cases, q("Case"), {"guid": guid("case", unit), "name": unit})
                        for sg in sorted(source_guid[d] for d in doc_ids):
                            etree.SubElement(case, q("SourceRef"), {"targetGUID": sg})
                    xf.write(cases)
                    del cases
            names = source_names(frames)
            taken: set[str] = set()
            with xf.element(q("Sources")):
                for doc_id, text, spans in source_texts(s):
                    sg = source_guid[doc_id]
                    z.writestr(f"sources/{sg}.txt", text.encode("utf-8"))
                    name = clean_text(names.get(doc_id, doc_id))
                    if name in taken:  # QDA tools key sources by name: same-named files get the id
                        name = f"{name} ({doc_id})"
                    taken.add(name)
                    src = etree.Element(q("TextSource"), {
                        "guid": sg, "name": name, "plainTextPath": f"internal://{sg}.txt",
                        "creatingUser": user, "creationDateTime": now}, nsmap=NSMAP)
                    for start, end, row in spans:
                        if not row.coded or end <= start:
                            continue
                        codes = []
                        if row.label in role_codes:
                            codes.append((1 + ROLES.index(row.label), role_codes[row.label]))
                        if row.theme in theme_codes:
                            codes.append((8, theme_codes[row.theme]))
                        idx = int(row.idx)
                        sel = etree.SubElement(src, q("PlainTextSelection"), {
                            "guid": child_guid(sg, 1, 0, idx), "name": str(idx),
                            "startPosition": str(start), "endPosition": str(end),
                            "creatingUser": user, "creationDateTime": now})
                        for slot, code in codes:
                            coding = etree.SubElement(sel, q("Coding"), {
                                "guid": child_guid(sg, 2, slot, idx), "creatingUser": user,
                                "creationDateTime": now})
                            etree.SubElement(coding, q("CodeRef"), {"targetGUID": code})
                    xf.write(src)
                    xf.flush()  # one document's XML at a time


def write_qdpx(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path) -> None:
    # project.qde is spooled to a temporary file next to the output (a season's XML is ~100s of MB)
    with tempfile.TemporaryFile(dir=path.parent) as qde, \
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        write_project(frames, meta, qde, z)
        qde.seek(0)
        with z.open("project.qde", "w", force_zip64=True) as dst:
            shutil.copyfileobj(qde, dst, 1 << 20)
