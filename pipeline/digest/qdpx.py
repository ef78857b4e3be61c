"""corpus.qdpx: the coded corpus as a REFI-QDA project (QualCoder, NVivo, ATLAS.ti, MAXQDA open it).

A .qdpx is a ZIP holding ``project.qde`` (XML, namespace urn:QDA-XML:project:1.0) and the sources
under ``sources/``. Each document becomes a TextSource whose text is the pipeline's Document.text
(sentence texts joined with "\\n" in order), each sentence a PlainTextSelection at its character
offsets, coded with its role and its theme; units become Cases.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from .common import ROLE_NAMES, ROLES, clean_text, frame, source_names, unit_name

NS = "urn:QDA-XML:project:1.0"
_GUID_NS = uuid.UUID("6f1c3a52-8a43-4f0e-9a57-6b7e0f1d2c11")  # fixed: same corpus, same GUIDs
ROLE_COLORS = {"strength": "#2E7D32", "gap": "#C62828", "cause": "#EF6C00", "measure": "#1565C0"}
THEME_COLOR = "#6D4C41"


def guid(*parts: Any) -> str:
    return str(uuid.uuid5(_GUID_NS, "\x1f".join(map(str, parts)))).upper()


def source_texts(sentences: pd.DataFrame) -> dict[str, tuple[str, list[tuple[int, int, dict[str, Any]]]]]:
    """Per document: its text and each sentence's (start, end, row).

    The text is the sentences joined with "\\n" in idx order (what Document.text is). Offsets are the
    sentence's own start/end when they point at its text, else where it sits in the joined text.
    """
    out = {}
    for doc_id, g in sentences.sort_values(["doc_id", "idx"]).groupby("doc_id", sort=False):
        texts = [clean_text(t) if not isinstance(t, str) else t for t in g["text"]]
        text = "\n".join(texts)
        spans = []
        pos = 0
        for t, row in zip(texts, g.to_dict("records"), strict=True):
            start, end = row.get("start"), row.get("end")
            ok = (start is not None and end is not None and not pd.isna(start) and not pd.isna(end)
                  and text[int(start):int(end)] == t)
            spans.append((int(start), int(end), row) if ok else (pos, pos + len(t), row))
            pos += len(t) + 1
        out[str(doc_id)] = (text, spans)
    return out


def build_project(frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> tuple[ET.Element, dict[str, str]]:
    """The project.qde tree and the source files (zip path → text)."""
    ET.register_namespace("", NS)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    q = lambda tag: f"{{{NS}}}{tag}"  # noqa: E731 - short alias for namespaced tags
    project = ET.Element(q("Project"), {"name": clean_text(f"汇编 {meta.get('season', '')}"),
                                         "origin": f"huibian {__version__}", "creationDateTime": now})
    user = guid("user", "huibian")
    users = ET.SubElement(project, q("Users"))
    ET.SubElement(users, q("User"), {"guid": user, "name": "huibian"})

    sentences = frame(frames, "sentences", ("doc_id", "idx", "text", "label"))
    if sentences is None:
        sentences = pd.DataFrame(columns=["doc_id", "idx", "text", "label", "theme", "unit"])
    themes = sorted({clean_text(t).strip() for t in sentences.get("theme", pd.Series(dtype=str))} - {""})

    codebook = ET.SubElement(ET.SubElement(project, q("CodeBook")), q("Codes"))
    role_root = ET.SubElement(codebook, q("Code"), {"guid": guid("code", "roles"), "name": "角色",
                                                    "isCodable": "false", "color": "#555555"})
    role_codes = {}
    for role in ROLES:
        role_codes[role] = guid("code", "role", role)
        c = ET.SubElement(role_root, q("Code"), {"guid": role_codes[role], "name": ROLE_NAMES[role],
                                                 "isCodable": "true", "color": ROLE_COLORS[role]})
        ET.SubElement(c, q("Description")).text = role
    theme_root = ET.SubElement(codebook, q("Code"), {"guid": guid("code", "themes"), "name": "主题",
                                                     "isCodable": "false", "color": THEME_COLOR})
    theme_codes = {}
    for theme in themes:
        theme_codes[theme] = guid("code", "theme", theme)
        ET.SubElement(theme_root, q("Code"), {"guid": theme_codes[theme], "name": theme,
                                              "isCodable": "true", "color": THEME_COLOR})

    names = source_names(frames)
    texts = source_texts(sentences)
    files: dict[str, str] = {}
    cases: dict[str, set[str]] = {}
    sources_el = ET.Element(q("Sources"))
    taken: set[str] = set()
    for doc_id, (text, spans) in texts.items():
        sg = guid("source", doc_id)
        files[f"sources/{sg}.txt"] = text
        name = clean_text(names.get(doc_id, doc_id))
        if name in taken:  # QDA tools key sources by name: same-named files from two folders get the id
            name = f"{name} ({doc_id})"
        taken.add(name)
        src = ET.SubElement(sources_el, q("TextSource"), {
            "guid": sg, "name": name, "plainTextPath": f"internal://{sg}.txt",
            "creatingUser": user, "creationDateTime": now})
        for start, end, row in spans:
            codes = []
            if row.get("label") in role_codes:
                codes.append(role_codes[row["label"]])
            theme = clean_text(row.get("theme")).strip()
            if theme in theme_codes:
                codes.append(theme_codes[theme])
            if not codes or end <= start:
                continue
            sel = ET.SubElement(src, q("PlainTextSelection"), {
                "guid": guid("sel", doc_id, row.get("idx")), "name": f"{row.get('idx')}",
                "startPosition": str(start), "endPosition": str(end),
                "creatingUser": user, "creationDateTime": now})
            for code in codes:
                coding = ET.SubElement(sel, q("Coding"), {"guid": guid("coding", doc_id, row.get("idx"), code),
                                                          "creatingUser": user, "creationDateTime": now})
                ET.SubElement(coding, q("CodeRef"), {"targetGUID": code})
            if "unit" in row:
                cases.setdefault(unit_name(row.get("unit")), set()).add(sg)
    if cases:  # the schema puts Cases before Sources
        cases_el = ET.SubElement(project, q("Cases"))
        for unit in sorted(cases):
            case = ET.SubElement(cases_el, q("Case"), {"guid": guid("case", unit), "name": unit})
            for sg in sorted(cases[unit]):
                ET.SubElement(case, q("SourceRef"), {"targetGUID": sg})
    project.append(sources_el)
    return project, files


def write_qdpx(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path) -> None:
    project, files = build_project(frames, meta)
    ET.indent(project, space=" ")
    xml = ET.tostring(project, encoding="utf-8", xml_declaration=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("project.qde", xml)
        for name, text in files.items():
            z.writestr(name, text.encode("utf-8"))
