"""Sentence splitting that respects quotes and brackets, and splits run-in headings."""

from __future__ import annotations

import re

from .headings import MARKERS

_END = set("。！？!?；;")
_CLOSE = set("”’」』）)】》\"'")
_OPEN = {"“": "”", "「": "」", "『": "』", "《": "》", "（": "）", "(": ")", "【": "】"}
_SPECIAL = re.compile("[" + re.escape("".join(sorted(_END | _CLOSE | set(_OPEN) | set(_OPEN.values()))))
                      + "]")
_CN = "一二三四五六七八九十"
# white space in front of a numbering marker: a run-in heading inside a one-line text
_RUN_IN = re.compile(rf"\s+(?=(?:[{_CN}]+、|\d{{1,2}}、|[（(][{_CN}\d]+[)）]|第[{_CN}]+[，,、])\S)")


def split_run_in(text: str) -> list[str]:
    """Split a long line at white space that precedes a numbering marker, and a heading that runs
    into its first paragraph without punctuation ("一、坚持理论武装 2004年，…")."""
    parts = [p for p in _RUN_IN.split(text) if p.strip()] if len(text) > 80 else [text]
    out: list[str] = []
    for p in parts:
        m = None
        for _, pat in MARKERS[1:]:
            m = pat.match(p)
            if m:
                break
        if m:
            rest = p[m.end():]
            gap = re.search(r"\s{1,}", rest)
            end = re.search(r"[。！？；;!?，,]", rest)
            if gap and (end is None or gap.start() < end.start()) and 4 <= gap.start() <= 40:
                cut = m.end() + gap.start()
                out.append(p[:cut])
                out.append(p[cut:].lstrip())
                continue
        out.append(p)
    return out


def split_sentences(text: str) -> list[str]:
    """Split on 。！？； (and ASCII forms), keeping closing quotes with their sentence.

    A terminal mark inside brackets or book-title marks does not end the sentence; inside quotes
    it does only when the closing quote follows directly (“…。”).
    """
    out: list[str] = []
    depth: list[str] = []  # the closers of the brackets open at this point
    start = pos = 0  # the sentence being read is text[start:...]
    n = len(text)
    # only brackets and marks matter: jump from one to the next (a character loop was half of
    # the structure stage)
    while (m := _SPECIAL.search(text, pos)) is not None:
        i = m.start()
        c = text[i]
        pos = i + 1
        if c in _OPEN:
            depth.append(_OPEN[c])
        elif depth and c == depth[-1]:
            depth.pop()
        elif c in _END and (not depth or all(d in "”」』" for d in depth) or i + 1 - start > 150):
            # take trailing closers and repeated marks with this sentence
            j = i + 1
            while j < n and (text[j] in _CLOSE or text[j] in _END):
                if depth and text[j] == depth[-1]:
                    depth.pop()
                j += 1
            if j - start > 150:
                depth.clear()  # an unbalanced bracket must not swallow the paragraph
            if not depth:
                s = text[start:j].strip()
                if s:
                    out.append(s)
                start = j
            pos = j
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out
