"""Tag: a role (strength / gap / cause / measure / other), confidence, evidence and theme per
sentence, following ../shared/annotation/GUIDE.md.

The guide's rules (``features.analyse``, cue lists in ``dictionaries/cues``) read each sentence with
its document around it; a calibrated logistic regression (``learner``, fitted by ``huibian train``)
reads the rules' output together with context, words and character features and takes the final
decision. Structural lines (furniture, TOC, table rows) are always ``other``.
"""

from __future__ import annotations

import os

from ..model import Document
from .features import analyse
from .learner import load_model
from .themes import theme_of

STRUCTURAL = ("furniture", "toc", "table")
UNSURE = 0.5  # below this top probability the rule's label is kept


def tag(doc: Document) -> Document:
    """Label every sentence of the document (stage 5)."""
    sents = doc.sentences
    if not sents:
        return doc
    titles = [a.title for a in doc.articles[:1]]
    kinds = _article_kinds(doc)
    ctx = analyse(sents, titles, doc.source, kinds)
    model = None if os.environ.get("HUIBIAN_RULES_ONLY") else load_model()
    if model is not None:
        labels, P, X = model.predict(ctx)
        top = P.max(axis=1)  # each sentence's top probability, taken once (not per row below)
        for k, (s, c) in enumerate(zip(sents, ctx, strict=True)):
            if s.evidence in STRUCTURAL:
                s.label, s.confidence, s.evidence = "other", float(max(top[k], c.conf)), s.evidence
                continue
            if c.label == "cause" and c.evidence.startswith("cue:reason"):
                # an explicit reason ("究其原因", "主要原因是") is the guide's own test for cause;
                # the model has seen few outside research reports and files them as problems
                s.label, s.evidence, s.confidence = c.label, c.evidence, c.conf
                continue
            if top[k] < UNSURE and c.label in model.labels:
                # the model has little to go on (a pattern its training data lacks): the guide's
                # rule decides, with the model's (low) probability for it as confidence
                s.label, s.evidence = c.label, c.evidence
                s.confidence = float(P[k][model.labels.index(c.label)])
                continue
            s.label = labels[k]
            s.confidence = float(top[k])
            s.evidence = c.evidence if labels[k] == c.label else f"model:{model.top_feature(X, k, labels[k])}"
    else:
        for s, c in zip(sents, ctx, strict=True):
            s.label, s.confidence, s.evidence = c.label, c.conf, c.evidence
    for s in sents:
        s.theme = theme_of(s.text) if s.label != "other" else ""
    return doc


def _article_kinds(doc: Document) -> dict[str, str]:
    """Kind of each article from its own title (an anthology holds summaries, plans and speeches)."""
    from .features import kind_cues

    out: dict[str, str] = {}
    for a in doc.articles:
        for kind, pat in kind_cues():
            if pat.search(a.title or ""):
                out[a.article_id] = kind
                break
    return out


__all__ = ["tag", "theme_of"]
