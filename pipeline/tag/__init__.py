"""Tag: a role (strength / gap / cause / measure / other), confidence, evidence and theme per
sentence, following ../shared/annotation/GUIDE.md."""

from __future__ import annotations

from ..model import Document
from .rules import rule_label
from .themes import theme_of


def tag(doc: Document) -> Document:
    """Label every sentence of the document (stage 5)."""
    for s in doc.sentences:
        s.label, s.confidence, s.evidence = rule_label(s)
        s.theme = theme_of(s.text) if s.label != "other" else ""
    return doc


__all__ = ["tag", "theme_of"]
