"""corpus.qdpx: the coded corpus as a REFI-QDA project (QualCoder, NVivo, ATLAS.ti, MAXQDA open it).

A .qdpx is a ZIP holding ``project.qde`` (XML, namespace urn:QDA-XML:project:1.0) and the sources
under ``sources/``. Each document becomes a TextSource whose text is the pipeline's Document.text
(sentence texts joined with "\\n" in order), each sentence a PlainTextSelection at its character
offsets, coded with its role and its theme; units become Cases.

Season scale (issue 8: ~450,000 sentences): nothing holds the whole project. ``project.qde`` is
written one TextSource at a time into a temporary file, each source text goes into the ZIP as soon
as its document is done, and the sentences are never copied: documents are put in order on small
integer arrays and each one's texts fetched when it is written. The small parts (users, codebook,
cases) are lxml elements; the bulk — a selection per coded sentence, whose attributes are GUIDs,
numbers and one timestamp, none needing escapes — is joined from string templates, and selection
and coding GUIDs are derived arithmetically from the document's GUID rather than hashed one by one.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

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


@dataclass
class Season:
    """The sentences as small arrays in document order (no text copied): ``order`` lists row
    positions doc by doc, ``bounds`` where each document starts and ends in it."""

    docs: list[str]
    order: np.ndarray
    bounds: np.ndarray
    idx: np.ndarray
    start: np.ndarray | None
    end: np.ndarray | None
    roles: np.ndarray  # slot of the role code (1–4), 0 for none
    themes: np.ndarray  # position in the theme list, -1 for none
    text: pd.Series  # the sentences' own column, read per document


def _ints(s: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in s.columns:
        return None
    return s[name].to_numpy(dtype="float64", na_value=np.nan)


def season_arrays(s: pd.DataFrame, themes: list[str]) -> Season:
    doc_codes, docs = pd.factorize(s["doc_id"].astype(str), sort=True)
    idx = s["idx"].to_numpy(dtype="int64", na_value=-1)
    order = np.lexsort((idx, doc_codes))  # by document, then idx (what sort_values did, without copies)
    cuts = np.flatnonzero(np.diff(doc_codes[order])) + 1
    bounds = np.concatenate(([0], cuts, [len(order)])) if len(order) else np.zeros(1, dtype=np.int64)
    label_codes, labels = pd.factorize(s["label"])
    role_slot = np.array([ROLES.index(lab) + 1 if lab in ROLES else 0 for lab in labels] + [0], dtype=np.int8)
    theme_pos = {t: i for i, t in enumerate(themes)}
    if "theme" in s.columns:
        theme_codes, theme_values = pd.factorize(s["theme"])
        lookup = np.array([theme_pos.get(clean_text(t).strip(), -1) for t in theme_values] + [-1], dtype=np.int32)
        theme_of = lookup[theme_codes]
    else:
        theme_of = np.full(len(s), -1, dtype=np.int32)
    return Season(list(docs), order, bounds, idx, _ints(s, "start"), _ints(s, "end"),
                  role_slot[label_codes], theme_of, s["text"])


def source_texts(season: Season) -> Iterator[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]:
    """Per document (one at a time): doc_id, its text, and per sentence (row position, start, end).

    The text is the sentences joined with "\n" in idx order (what Document.text is). Offsets are the
    sentence's own start/end when they point at its text, else where it sits in the joined text.
    """
    for i, doc_id in enumerate(season.docs):
        rows = season.order[season.bounds[i]:season.bounds[i + 1]]
        texts = ["" if t is None else str(t) for t in
                 season.text.iloc[rows].astype(object).where(season.text.iloc[rows].notna(), None)]
        text = "\n".join(texts)
        if XML_ILLEGAL.search(text):  # rare: clean this document's sentences, then join again
            texts = [clean_text(t) for t in texts]
            text = "\n".join(texts)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
        ends = starts + lengths
        if season.start is not None and season.end is not None:
            own_a, own_b = season.start[rows], season.end[rows]
            differ = np.flatnonzero(~np.isnan(own_a) & ~np.isnan(own_b) & ((own_a != starts) | (own_b != ends)))
            for j in differ:  # only where the stored offsets disagree: do they point at the text?
                a, b = int(own_a[j]), int(own_b[j])
                if text[a:b] == texts[j]:
                    starts[j], ends[j] = a, b
        yield str(doc_id), text, rows, starts, ends


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
    theme_col = sentences["theme"] if "theme" in sentences.columns else pd.Series([], dtype=object)
    themes = sorted(set(map_unique(theme_col, lambda t: clean_text(t).strip())) - {""})
    codebook, role_codes, theme_codes = _codebook(themes)
    season = season_arrays(sentences, themes)
    role_guids = [""] + [role_codes[r] for r in ROLES]
    theme_guids = [theme_codes[t] for t in themes]
    coded = (season.roles > 0) | (season.themes >= 0)
    lengths = sentences["text"].str.len().fillna(0).to_numpy() if len(sentences) else np.zeros(0)
    source_guid = {d: guid("source", d) for d in season.docs}

    qde.write(b"<?xml version='1.0' encoding='utf-8'?>\n")
    project_name = quoteattr(clean_text(f"汇编 {meta.get('season', '')}"))
    qde.write(f'<Project xmlns="{NS}" name={project_name} origin="huibian {__version__}" '
              f'creationDateTime="{now}">\n'.encode())
    users = etree.Element(q("Users"), nsmap=NSMAP)
    etree.SubElement(users, q("User"), {"guid": user, "name": "huibian"})
    parts = [users, codebook]
    if "unit" in sentences.columns:  # the schema puts Cases before Sources
        mask = coded & (lengths > 0)
        docs_of = pd.Series(np.asarray(sentences["doc_id"].astype(str))[mask])
        by_unit = docs_of.groupby(map_unique(sentences["unit"][mask], unit_name).to_numpy(), sort=True).unique()
        if len(by_unit):
            cases = etree.Element(q("Cases"), nsmap=NSMAP)
            for unit, doc_ids in by_unit.items():
                case = etree.SubElement(cases, q("Case"), {"guid": guid("case", unit), "name": unit})
                for sg in sorted(source_guid[d] for d in doc_ids):
                    etree.SubElement(case, q("SourceRef"), {"targetGUID": sg})
            parts.append(cases)
    for el in parts:
        qde.write(etree.tostring(el, encoding="utf-8") + b"\n")
    del parts, codebook

    names = source_names(frames)
    taken: set[str] = set()
    stamp = f'creatingUser="{user}" creationDateTime="{now}"'
    qde.write(b"<Sources>\n")
    for doc_id, text, rows, starts, ends in source_texts(season):
        sg = source_guid[doc_id]
        z.writestr(f"sources/{sg}.txt", text.encode("utf-8"))
        name = clean_text(names.get(doc_id, doc_id))
        if name in taken:  # QDA tools key sources by name: same-named files get the id
            name = f"{name} ({doc_id})"
        taken.add(name)
        out = [f'<TextSource guid="{sg}" name={quoteattr(name)} plainTextPath="internal://{sg}.txt" {stamp}>']
        for j in np.flatnonzero(coded[rows] & (ends > starts)):
            row = rows[j]
            idx = int(season.idx[row])
            out.append(f'<PlainTextSelection guid="{child_guid(sg, 1, 0, idx)}" name="{idx}" '
                       f'startPosition="{starts[j]}" endPosition="{ends[j]}" {stamp}>')
            slot = int(season.roles[row])
            if slot:
                out.append(f'<Coding guid="{child_guid(sg, 2, slot, idx)}" {stamp}>'
                           f'<CodeRef targetGUID="{role_guids[slot]}"/></Coding>')
            theme = int(season.themes[row])
            if theme >= 0:
                out.append(f'<Coding guid="{child_guid(sg, 2, 8, idx)}" {stamp}>'
                           f'<CodeRef targetGUID="{theme_guids[theme]}"/></Coding>')
            out.append("</PlainTextSelection>")
        out.append("</TextSource>\n")
        qde.write("".join(out).encode("utf-8"))  # one document's XML at a time
    qde.write(b"</Sources>\n</Project>\n")


def write_qdpx(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path) -> None:
    # project.qde is spooled to a temporary file next to the output (a season's XML is ~100s of MB)
    with tempfile.TemporaryFile(dir=path.parent) as qde, \
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        write_project(frames, meta, qde, z)
        qde.seek(0)
        with z.open("project.qde", "w", force_zip64=True) as dst:
            shutil.copyfileobj(qde, dst, 1 << 20)
