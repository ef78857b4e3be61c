"""corpus.qdpx: the coded corpus as a REFI-QDA project (QualCoder, NVivo, ATLAS.ti, MAXQDA open it).

A .qdpx is a ZIP holding ``project.qde`` (XML, namespace urn:QDA-XML:project:1.0) and the sources
under ``sources/``. Each document becomes a TextSource whose text is the pipeline's Document.text
(sentence texts joined with "\\n" in order), each sentence a PlainTextSelection at its character
offsets, coded with its role and its theme; units become Cases.

Season scale (issue 8: 1,000 reports, reruns after one changed file): everything that depends on one
file — its source text and its TextSource's selections and codings — is made once by
:func:`document_part`, compressed, and cached with the file; :func:`write_qdpx` only writes the
small head (users, codebook, cases: lxml elements) and concatenates the files' compressed pieces
(``zipparts``). Nothing in a file's piece depends on the rest of the season: GUIDs come from the
document id, the code's name (themes) or the sentence index, and no timestamps are written (the
same corpus gives the same bytes; REFI-QDA makes creation times optional).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd
from lxml import etree

from .. import __version__
from .common import ROLE_NAMES, ROLES, XML_ILLEGAL, clean_text, unit_name
from .xlsx import file_name, season_parts
from .zipparts import Deflated, ZipWriter, deflate, stored

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


USER = guid("user", "huibian")
PART_KEY = "qdpx"  # where a file's SourcePart sits in its part mapping


@dataclass(frozen=True)
class SourcePart:
    """One file's share of the project: its source text and its TextSource's selections (ending
    with ``</TextSource>``), compressed; the units and themes it codes (for Cases and the codebook)."""

    doc_id: str
    name: str  # the file's short name (made unique in the season by write_qdpx)
    guid: str
    text: Deflated
    selections: Deflated
    units: tuple[str, ...]
    themes: tuple[str, ...]


def offsets(texts: list[str], own_start: np.ndarray | None, own_end: np.ndarray | None,
            text: str) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence's (start, end) in the joined text: its own offsets when they point at its text,
    else where it sits in the join."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
    ends = starts + lengths
    if own_start is not None and own_end is not None:
        differ = np.flatnonzero(~np.isnan(own_start) & ~np.isnan(own_end)
                                & ((own_start != starts) | (own_end != ends)))
        for j in differ:  # only where the stored offsets disagree: do they point at the text?
            a, b = int(own_start[j]), int(own_end[j])
            if text[a:b] == texts[j]:
                starts[j], ends[j] = a, b
    return starts, ends


def _floats(s: pd.DataFrame, name: str) -> np.ndarray | None:
    return s[name].to_numpy(dtype="float64", na_value=np.nan) if name in s.columns else None


def _map_values(values: list[Any], func: Callable[[Any], Any]) -> list[Any]:
    """``[func(v) for v in values]``, func called once per distinct value (a file repeats its
    unit and its themes on every row)."""
    done: dict[Any, Any] = {}
    out = []
    for v in values:
        r = done.get(v, done)
        if r is done:
            r = done[v] = func(v)
        out.append(r)
    return out


def document_part(doc: dict[str, pd.DataFrame]) -> SourcePart | None:
    """One file's source text and coded selections, compressed (None when it has no sentences)."""
    s = doc.get("sentences")
    if not isinstance(s, pd.DataFrame) or not len(s) or "text" not in s.columns:
        return None
    # Document.text is the sentences in idx order: the columns are read as lists and put in that
    # order (a frame selection would copy all ~18 columns, most of them not needed here)
    n = len(s)
    idx_all = s["idx"].to_numpy(dtype="int64", na_value=-1) if "idx" in s.columns else np.arange(n)
    order = np.argsort(idx_all, kind="stable")
    in_order = bool((order == np.arange(n)).all())

    def col(values: list[Any]) -> list[Any]:
        return values if in_order else [values[i] for i in order.tolist()]

    def floats(name: str) -> np.ndarray | None:
        f = _floats(s, name)
        return f if f is None or in_order else f[order]

    doc_id = str(s["doc_id"].iloc[int(order[0])])
    sg = guid("source", doc_id)
    texts = [t if isinstance(t, str) else "" if t is None or t != t else str(t)
             for t in col(s["text"].tolist())]
    text = "\n".join(texts)
    if XML_ILLEGAL.search(text):  # rare: clean this document's sentences, then join again
        texts = [clean_text(t) for t in texts]
        text = "\n".join(texts)
    starts, ends = offsets(texts, floats("start"), floats("end"), text)
    labels = col(s["label"].tolist()) if "label" in s.columns else [None] * n
    roles = [ROLES.index(lab) + 1 if lab in ROLES else 0 for lab in labels]
    themes = (col(_map_values(s["theme"].tolist(), lambda t: clean_text(t).strip()))
              if "theme" in s.columns else [""] * n)
    idx = idx_all[order].tolist()
    units = col(_map_values(s["unit"].tolist(), unit_name)) if "unit" in s.columns else None
    theme_guid = {t: guid("code", "theme", t) for t in set(themes) - {""}}
    stamp = f'creatingUser="{USER}"'
    out: list[str] = []
    coded_units: set[str] = set()
    # child_guid(sg, kind, slot, i) is a fixed prefix per (kind, slot) and the index: the prefixes
    # made once per file (~1,200 GUIDs a report: a third of this function's time otherwise)
    sel_pre = child_guid(sg, 1, 0, 0)[:24]
    role_pre = [child_guid(sg, 2, k, 0)[:24] for k in range(len(ROLE_GUIDS))]
    theme_pre = child_guid(sg, 2, 8, 0)[:24]
    mask = 0xFFFFFFFFFFFF
    starts_l, ends_l = starts.tolist(), ends.tolist()
    for j, (slot, theme, i) in enumerate(zip(roles, themes, idx, strict=True)):
        if not slot and not theme:
            continue
        if units is not None and texts[j]:
            coded_units.add(units[j])
        if ends_l[j] <= starts_l[j]:
            continue
        tail = f"{i & mask:012X}"
        out.append(f'<PlainTextSelection guid="{sel_pre}{tail}" name="{i}" '
                   f'startPosition="{starts_l[j]}" endPosition="{ends_l[j]}" {stamp}>')
        if slot:
            out.append(f'<Coding guid="{role_pre[slot]}{tail}" {stamp}>'
                       f'<CodeRef targetGUID="{ROLE_GUIDS[slot]}"/></Coding>')
        if theme:
            out.append(f'<Coding guid="{theme_pre}{tail}" {stamp}>'
                       f'<CodeRef targetGUID="{theme_guid[theme]}"/></Coding>')
        out.append("</PlainTextSelection>")
    out.append("</TextSource>\n")
    name = clean_text(file_name(doc) or doc_id)
    return SourcePart(doc_id, name, sg, deflate(text.encode("utf-8")), deflate("".join(out).encode("utf-8")),
                      tuple(sorted(coded_units)), tuple(sorted(set(themes) - {""})))


ROLE_GUIDS = [""] + [guid("code", "role", r) for r in ROLES]


def write_qdpx(frames: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path,
               parts: Sequence[Mapping[str, Any]] | None = None, key: str = PART_KEY) -> None:
    """The project from the files' parts (one mapping per input file, in input order, holding the
    file's :func:`document_part` under ``key``); without them they are built from frames["sentences"].
    Sources are written as the parts are read (each once); project.qde follows, from the compressed
    selections kept meanwhile (a few MB for a 1,000-report season)."""
    if parts is None:
        parts = season_parts(frames, document_part, key)
    tmp = path.with_name(path.name + ".part")
    sources: list[tuple[SourcePart, str]] = []
    cases: dict[str, list[str]] = {}
    themes: set[str] = set()
    taken: set[str] = set()
    with open(tmp, "wb") as fh:
        z = ZipWriter(fh)
        for p in parts:
            part: SourcePart | None = p[key]
            if part is None:
                continue
            z.write_pieces(f"sources/{part.guid}.txt", [part.text])
            name = part.name
            if name in taken:  # QDA tools key sources by name: same-named files get the id
                name = f"{name} ({part.doc_id})"
            taken.add(name)
            sources.append((_drop_text(part), name))
            for unit in part.units:
                cases.setdefault(unit, []).append(part.guid)
            themes.update(part.themes)
        z.write_pieces("project.qde", _project(meta, sources, cases, sorted(themes)))
        z.close()
    tmp.replace(path)


def _drop_text(part: SourcePart) -> SourcePart:
    """The part without its source text (written already): only the selections are kept for later."""
    return SourcePart(part.doc_id, part.name, part.guid, Deflated(b"", 0, 0), part.selections, (), ())


def _project(meta: dict[str, Any], sources: list[tuple[SourcePart, str]], cases: dict[str, list[str]],
             themes: list[str]) -> Iterator[Deflated]:
    project_name = quoteattr(clean_text(f"汇编 {meta.get('season', '')}"))
    head = [f"<?xml version='1.0' encoding='utf-8'?>\n<Project xmlns=\"{NS}\" name={project_name} "
            f'origin="huibian {__version__}">\n'.encode()]
    users = etree.Element(q("Users"), nsmap=NSMAP)
    etree.SubElement(users, q("User"), {"guid": USER, "name": "huibian"})
    elements = [users, _codebook(themes)[0]]
    if cases:  # the schema puts Cases before Sources
        el = etree.Element(q("Cases"), nsmap=NSMAP)
        for unit in sorted(cases):
            case = etree.SubElement(el, q("Case"), {"guid": guid("case", unit), "name": unit})
            for sg in sorted(cases[unit]):
                etree.SubElement(case, q("SourceRef"), {"targetGUID": sg})
        elements.append(el)
    head += [etree.tostring(el, encoding="utf-8") + b"\n" for el in elements]
    head.append(b"<Sources>\n")
    yield stored(b"".join(head))
    for part, name in sources:
        sg = part.guid
        yield stored(f'<TextSource guid="{sg}" name={quoteattr(name)} plainTextPath="internal://{sg}.txt" '
                     f'creatingUser="{USER}">'.encode())
        yield part.selections
    yield stored(b"</Sources>\n</Project>\n")
