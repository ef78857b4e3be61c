"""Editors' corrections: read the review sheet back and apply it on every rerun.

A correction is keyed by the sentence's canonical text (white space removed, full-/half-width
unified) and its document's file name without folders or extension, so it survives re-ingestion
of the same text, a moved input folder and renumbered sentences. Rows without a valid
``correct_label`` are ignored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import pandas as pd

from ..evaluate import canon
from ..model import LABELS


def doc_name(source: str) -> str:
    return PurePosixPath(str(source).replace("\\", "/")).stem


def sentence_key(text: str, source: str) -> str:
    """Stable key of a sentence: hash of its canonical text and its document's file name."""
    return hashlib.sha1(f"{doc_name(source)}\x1f{canon(text)}".encode()).hexdigest()[:16]


def read_corrections(path: Path) -> list[dict[str, str]]:
    """Rows with a valid ``correct_label`` from a review XLSX or CSV; ValueError with a reason."""
    if not path.exists():
        raise ValueError(f"corrections file not found: {path}")
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            df = pd.read_excel(path, dtype=str, engine="openpyxl").fillna("")
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # a damaged or foreign file: say so, do not crash the run
        raise ValueError(f"cannot read corrections {path.name}: {type(e).__name__}: {e}") from None
    if "correct_label" not in df.columns:
        raise ValueError(f"{path.name}: no column 'correct_label' (write one with `huibian review`)")
    rows = []
    for r in df.to_dict("records"):
        lab = str(r.get("correct_label", "")).strip().lower()
        if lab not in LABELS:
            continue
        key = str(r.get("key", "")).strip()
        if not key and r.get("text"):
            key = sentence_key(str(r["text"]), str(r.get("source", "")))
        rows.append({"key": key, "text": str(r.get("text", "")), "source": str(r.get("source", "")),
                     "correct_label": lab})
    return rows


def apply_corrections(sentences: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """The sentences frame with every matching correction applied (label, confidence 1, evidence).

    An unreadable corrections file stops the run with a one-line reason (``RunError``, exit 2)
    rather than silently publishing uncorrected labels.
    """
    from ..run import RunError

    try:
        rows = read_corrections(Path(path))
    except ValueError as e:
        raise RunError(str(e)) from None
    return matching_corrections(sentences, rows)[0]


def matching_corrections(sentences: pd.DataFrame, rows: list[dict[str, str]]
                         ) -> tuple[pd.DataFrame, list[str]]:
    """(the sentences with the corrections ``rows`` applied, "key=label" of each one applied,
    sorted): the run keys a file's cached parts on what applied to it."""
    if not rows or sentences.empty:
        return sentences, []
    by_key = {r["key"]: r["correct_label"] for r in rows if r["key"]}
    # a correction made without a source applies to that text wherever it occurs
    by_text = {canon(r["text"]): r["correct_label"] for r in rows if r["text"] and not r["source"]}
    out = sentences.copy()
    sources = out["source"] if "source" in out else pd.Series([""] * len(out), index=out.index)
    keys = [sentence_key(t, s) for t, s in zip(out["text"], sources, strict=True)]
    new = [by_key.get(k) or by_text.get(canon(t)) for k, t in zip(keys, out["text"], strict=True)]
    hit = pd.Series([n is not None for n in new], index=out.index)
    if hit.any():
        out.loc[hit, "label"] = [n for n in new if n is not None]
        out.loc[hit, "confidence"] = 1.0
        out.loc[hit, "evidence"] = "correction"
    applied = sorted({f"{k}={n}" for k, n in zip(keys, new, strict=True) if n is not None})
    return out, applied
