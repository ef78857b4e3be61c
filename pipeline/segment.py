"""Segment: jieba word segmentation with the domain dictionary, loaded once per process."""

from __future__ import annotations

import logging

import jieba

from .dictionaries import read_lines
from .model import Document
from .resources import process_model


@process_model
def tokenizer() -> jieba.Tokenizer:
    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    tk.initialize()
    for line in read_lines("userdict.txt"):
        word, *rest = line.split()
        freq = int(rest[0]) if rest and rest[0].isdigit() else None
        tk.add_word(word, freq, rest[1] if len(rest) > 1 else None)
    return tk


def cut(text: str) -> list[str]:
    return [w for w in tokenizer().lcut(text) if w.strip()]


def segment(doc: Document) -> Document:
    """Attach jieba tokens to every sentence (stage 4)."""
    for s in doc.sentences:
        s.tokens = cut(s.text)
    return doc
