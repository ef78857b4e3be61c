"""Transparent role rules following annotation/GUIDE.md; cue lists come from dictionaries/cues."""

from __future__ import annotations

import re
from functools import cache

from ..dictionaries import read_patterns
from ..model import Sentence

SECTION_LABELS = ("gap", "cause", "measure", "strength")


@cache
def cues(name: str) -> re.Pattern[str]:
    pats = read_patterns(f"cues/{name}.txt")
    return re.compile("|".join(f"(?:{p})" for p in pats)) if pats else re.compile(r"(?!x)x")


def section_role(section: list[str]) -> tuple[str | None, str]:
    """Role of the innermost heading on the path that names one (rule 1: section first)."""
    for title in reversed(section):
        for label in ("cause", "gap", "measure", "strength"):
            m = cues(f"section_{label}").search(title)
            if m:
                return label, f"section:{m.group(0)}"
    return None, ""


def rule_label(s: Sentence) -> tuple[str, float, str]:
    """(label, confidence, evidence) by the guide's rules, without a learned model."""
    if s.evidence in ("furniture", "toc", "table"):
        return "other", 0.95, s.evidence
    text = s.text
    role, why = section_role(s.section[:-1] if s.is_heading else s.section)
    if s.is_heading and not re.search(r"[。！？!?；;]", text):
        # a bare heading only names a section (rule 2)
        own, _ = section_role([text])
        if own is not None or len(text) < 20:
            return "other", 0.8, "heading"
    if cues("cause").search(text) and role in (None, "gap", "cause"):
        return "cause", 0.6, "cue:cause"
    if role == "cause":
        return "cause", 0.75, why
    if role == "gap":
        return "gap", 0.7, why
    g = cues("gap").search(text)
    m = cues("measure").search(text)
    st = cues("strength").search(text)
    if g and not m:
        return "gap", 0.55, f"cue:{g.group(0)}"
    if role == "measure":
        return "measure", 0.7, why
    if role == "strength":
        if m and not st and m.start() == 0:
            return "strength", 0.5, why
        return "strength", 0.7, why
    if m and (not st or m.start() < st.start()):
        return "measure", 0.5, f"cue:{m.group(0)}"
    if st:
        return "strength", 0.5, f"cue:{st.group(0)}"
    return "other", 0.4, "default"
