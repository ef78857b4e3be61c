"""Context of every sentence in its document, the guide's rule decision, and model features.

``analyse(sentences, titles)`` walks a document's sentences once, in order, keeping its own heading
stack (so it does not depend on how finely the structure stage nests sections), the document kind
(government work report, speech, summary, plan, research report), the passage state ("同时也要看到…
问题" opens a problems passage) and position. For each sentence it returns a ``Context`` with the
rule label (the transparent decision the guide describes) and the feature strings the learned
model reads: the rule's output, section role, heading claim, kind, position, neighbours, cue hits,
jieba words and character bigrams.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import Sentence
from ..structure.headings import MARKERS
from .rules import MARKER, cue_matches, cues, kind_cues, named_roles, polarity, strip_marker

_TERMINAL = re.compile(r"[。！？!?；;]")
# heading markers and their rank type (one table, shared with the structure stage); the rank of a
# type is the order of first appearance. "一是…" opens list items far more often than headings, so
# the tagger treats it apart (a heading only where the structure stage flagged one).
_HEAD_MARK = [(name, pat) for name, pat in MARKERS if name != "shi"]
_SHI = dict(MARKERS)["shi"]
# all of them in one pattern: most sentences have no marker, and one failed match tells it
# (an alternation matches exactly where one of its branches does)
_ANY_HEAD_MARK = re.compile("|".join(f"(?:{pat.pattern})" for _, pat in _HEAD_MARK)) if all(
    pat.flags == _HEAD_MARK[0][1].flags for _, pat in _HEAD_MARK) else None


@dataclass
class Heading:
    mark: str
    text: str
    named: list[str]  # roles the heading names (several for "现状、差距及成因")
    pol: str | None  # what the heading claims by its own words
    role: str | None = None  # the role it gives the sentences under it
    practice: bool = False  # a practice article's claim heading (its part may still turn out a plan)


@dataclass
class Context:
    label: str  # the rule's label
    conf: float
    evidence: str
    role: str | None  # effective section role
    kind: str
    part: int = 0  # top-level part of the article the sentence is in
    hits: tuple[str, ...] = ()
    # the model's features in three pieces: ``feats`` joins them. The lexical ones (words and
    # character bigrams, most of the strings) are kept as their sources, ``body`` and ``tokens``:
    # tagging looks them up without making the strings (``learner.Model.matrix``)
    head: list[str] = field(default_factory=list)  # rule, section, position, cue features
    body: str = ""  # marker-stripped text: its character bigrams
    tokens: Sequence[str] = ()  # jieba words
    tail: list[str] = field(default_factory=list)  # part tense and neighbours (added after the walk)

    @property
    def feats(self) -> list[str]:
        """All feature strings of the sentence, in the order training has always seen them."""
        return self.head + lexical_feats(self.body, self.tokens) + self.tail


def doc_kind(titles: Sequence[str], sentences: Sequence[Sentence], source: str = "") -> str:
    """gov / speech / plan / summary / research / report, from the title and the opening lines."""
    lines = [s.text for s in sentences[:40] if s.evidence not in ("furniture", "toc", "table")][:4]
    head = " ".join(list(titles) + lines)
    for kind, pat in kind_cues():
        if pat.search(head):
            return kind
    if "gov" in source.lower() or "政府" in source:
        return "gov"
    return "report"


def heading_of(s: Sentence, first_in_para: bool) -> Heading | None:
    """The sentence as a heading, or None: the structure stage's flag, or a numbered short title."""
    text = s.text.strip()
    mark = None
    for name, pat in _HEAD_MARK if _ANY_HEAD_MARK is None or _ANY_HEAD_MARK.match(text) else ():
        m = pat.match(text)
        if m:
            mark = name
            rest = text[m.end():]
            break
    if mark is None and s.is_heading and _SHI.match(text):
        return Heading("shi", text, named_roles(text), polarity(text)[0])
    if mark is None:
        if (s.is_heading and len(text) <= 40 and not _TERMINAL.search(text)) or (first_in_para and len(text) <= 24 and not _TERMINAL.search(text)
                            and named_roles(text)):
            return Heading("title", text, named_roles(text), polarity(text)[0])
        return None
    if mark == "md":
        inner = strip_marker(rest)
        mark = "title"  # an unnumbered Markdown heading starts a new top level
        for name, pat in _HEAD_MARK[1:]:
            if pat.match(rest):
                mark = name
                break
        rest = inner
    # a numbered line is a heading when its first clause is short (a title, not a paragraph)
    first = _TERMINAL.split(rest, maxsplit=1)[0]
    lead = re.split(r"\s{1,}", rest.strip(), maxsplit=1)[0]
    if not (s.is_heading or len(first) <= 40 or len(lead) <= 40):
        return None
    if mark == "order" and len(first) > 24:
        return None
    title = lead if len(first) > 40 else first
    # a heading names a section when it is a short noun phrase ("二、存在的问题"); a claim of two
    # clauses ("（五）着力缩小城乡区域差距，协调发展水平明显提升") or a sentence does not
    names = len(title) <= 40 and not _TERMINAL.search(rest[:len(first) + 1]) and not re.search(r"[，,]", title)
    named = named_roles(title) if names else []
    if names and not named and cues("section_neutral").search(strip_marker(title).rstrip("。.")):
        named = ["other"]  # a section of neutral facts and counts (GUIDE: "other")
    return Heading(mark, title, named, polarity(title)[0])


class _Stack:
    """Heading path by marker rank; a 'title' (unnumbered heading) starts a new top level."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.items: list[Heading] = []

    def rank(self, mark: str) -> int:
        if mark == "title":
            return -1
        if mark not in self.order:
            self.order.append(mark)
        return self.order.index(mark)

    def push(self, h: Heading) -> None:
        r = self.rank(h.mark)
        while self.items and self.rank(self.items[-1].mark) >= r:
            self.items.pop()
        self.items.append(h)

    def role(self) -> tuple[str | None, str]:
        """Innermost heading giving a role; a mixed heading defers to the claims inside it."""
        inner_pol: str | None = None
        for h in reversed(self.items):
            if len(h.named) == 1:
                return h.named[0], f"section:{h.text[:16]}"
            if len(h.named) > 1:
                if inner_pol in h.named or inner_pol == "gap" and "cause" in h.named:
                    return inner_pol, f"claim:{h.text[:16]}"
                return None, "mixed"
            if h.role is not None:
                return h.role, f"{'practice' if h.practice else 'part'}:{h.text[:16]}"
            if inner_pol is None and h.pol in ("gap", "strength", "cause"):
                inner_pol = h.pol
        return None, ""

    def claim(self) -> str | None:
        for h in reversed(self.items):
            if h.pol is not None:
                return h.pol
            if h.named:
                return None
        return None


_CUE_LISTS = ("gap", "gap_intro", "cause", "done", "future", "other", "measure", "strength", "measure_open",
              "practice", "gap_addressed", "contrast")


# cue lists that only steer the rules: as model features they are frequent, topic-like and noisy
_RULE_ONLY = frozenset({"practice", "gap_addressed", "contrast"})


def _cue_hits(body: str) -> tuple[list[str], dict[str, re.Match[str] | None]]:
    """Names of the cue lists found in the sentence (marker stripped: ``body``) and their matches."""
    found = cue_matches(body, _CUE_LISTS)
    return [n for n in _CUE_LISTS if found[n]], found


def analyse(sentences: Sequence[Sentence], titles: Sequence[str] = (), source: str = "",
            kinds: dict[str, str] | None = None) -> list[Context]:
    """Rule decision and model features for every sentence of one document, in order."""
    out: list[Context] = []
    stack = _Stack()
    article = None
    kind = "report"
    parts = 0  # top-level parts seen in this article (gov reports: 1 = review, later = plans)
    passed_strength = False
    gap_mode = False
    lead_role: str | None = None
    prev_para = None
    art_start = 0
    part_id = 0
    art_len: dict[str, int] = {}
    for s in sentences:
        art_len[s.article_id] = art_len.get(s.article_id, 0) + 1
    for i, s in enumerate(sentences):
        if s.article_id != article:
            article = s.article_id
            part_id += 1
            stack = _Stack()
            art_start = i
            parts = 0
            passed_strength = False
            gap_mode = False
            lead_role = None
            kind = (kinds or {}).get(s.article_id) or doc_kind(
                titles if i == 0 else (), sentences[i:i + 40], source)
        first_in_para = s.para != prev_para
        prev_para = s.para
        text = s.text
        # the text without its list marker, once: the cues, the rules and the features all read it
        # (MARKER is anchored at the start: its match there is what strip_marker removes)
        marker = MARKER.match(text)
        body = text[marker.end():] if marker else text
        hits, found = _cue_hits(body)
        pos = (i - art_start) / max(1, art_len[s.article_id])
        structural = s.evidence in ("furniture", "toc", "table")
        head = None if structural else heading_of(s, first_in_para)
        label, conf, why = "other", 0.4, "default"
        if head is not None:
            gap_mode = False
            if head.mark == "title" or (head.mark == "cn" and re.match(r"^\s*(?:#+\s*)?一\s*[、．.:：]", text)
                                        and stack.items):
                # numbering starts again: a new report inside the same file (anthologies, web
                # pages), or the numbered parts under an unnumbered title (keep the titles)
                titles_kept = [h for h in stack.items if h.mark == "title"] if head.mark != "title" else []
                stack = _Stack()
                stack.items = titles_kept
                parts = 0
                if kind != "gov":  # a government report is one report: its review stays behind it
                    passed_strength = False
                for k2, pat in kind_cues():
                    # a title inside an anthology names the next report's kind; the titled parts
                    # of a government work report do not make it something else
                    if head.mark == "title" and kind != "gov" and pat.search(head.text):
                        kind = k2
                        break
            top = head.mark == "title" or stack.rank(head.mark) == 0
            if top:
                part_id += 1
                lead_role = None
                if head.named:
                    head.role = head.named[-1] if len(head.named) > 1 else None
                else:
                    parts += 1
                    head.role = _part_role(kind, head, parts, passed_strength)
                    if head.role == "practice":
                        head.role, head.practice = "strength", True
                passed_strength = passed_strength or "strength" in head.named or head.role == "strength"
            stack.push(head)
            role, rwhy = stack.role()
            role = role or lead_role
            if head.named:
                label, conf, why = "other", 0.85, "heading:names a section"
            elif head.pol is None and _bare(head.text, role, text):
                label, conf, why = "other", 0.7, "heading:bare"
            else:
                # rule 2: a claim heading carries its claim, else the role of its section
                parent = stack.items[-2:-1]
                prole = role
                if parent and len(parent[0].named) > 1 and head.pol:
                    prole = head.pol
                if head.pol == "gap" and prole in (None, "strength", "gap"):
                    label, conf, why = "gap", 0.75, "heading:claims a gap"
                elif prole is not None:
                    label, conf, why = prole, 0.75, f"heading:{rwhy or 'section'}"
                elif head.pol is not None:
                    label, conf, why = head.pol, 0.6, "heading:claim"
        else:
            role, rwhy = stack.role()
            if role is None and lead_role is not None:
                role, rwhy = lead_role, "lead-in"
            if role is None and kind == "summary":
                role, rwhy = "strength", "kind:summary"
            if role is None and kind == "plan" and parts:
                role, rwhy = "measure", "kind:plan"
            label, conf, why, gap_mode = _body(text, body, hits, found, role, rwhy, kind, gap_mode,
                                               first_in_para)
            if text.rstrip().endswith(("：", ":")) and len(text) <= 40:
                named = named_roles(text)
                if named:
                    lead_role = named[-1]
                    label, conf, why = ("gap", 0.7, "lead-in:problems") if lead_role == "gap" else (
                        "other", 0.6, "lead-in")
        if structural:
            label, conf, why, role = "other", 0.95, s.evidence, None
        ctx = Context(label, conf, why, role, kind, part=part_id, hits=tuple(hits))
        ctx.head = _features(s, body, marker is not None, ctx, hits, head, pos, stack, gap_mode, first_in_para)
        ctx.body, ctx.tokens = body, s.tokens or ()
        out.append(ctx)
    _practice_tense(out, sentences)
    _part_tense(out, sentences)
    _neighbours(out, sentences)
    return out


def _bare(title: str, role: str | None, text: str) -> bool:
    """A heading that only names a topic ("1、基本情况"): short and not a sentence. A short sentence
    ("第一是增强中心意识。", "（一）领导要到位。") states a claim and takes its section's role."""
    body = strip_marker(title)
    short = len(re.sub(r"[。.，,\s]", "", body))
    if _TERMINAL.search(text) and short > 4:
        return False
    return short <= 6 or (len(body) <= 8 and role is None and not _TERMINAL.search(text))


def _practice_tense(out: list[Context], sentences: Sequence[Sentence]) -> None:
    """A practice part whose sentences mostly demand (要…, 必须…, 将…) is a plan after all: its
    practice-default labels become measure (rule 3: tense decides between strength and measure)."""
    done: dict[int, int] = {}
    todo: dict[int, int] = {}
    for c in out:
        if "measure_open" in c.hits or "future" in c.hits and "done" not in c.hits:
            todo[c.part] = todo.get(c.part, 0) + 1
        elif "done" in c.hits:
            done[c.part] = done.get(c.part, 0) + 1
    for c in out:
        if not c.evidence.split(":", 1)[-1].startswith("practice") and not c.evidence.startswith("practice"):
            continue
        m, d = todo.get(c.part, 0), done.get(c.part, 0)
        if m >= 3 and m > 2 * d and c.label == "strength":
            c.label, c.conf, c.evidence = "measure", 0.5, "practice:to do"
            c.role = "measure"
            c.head[:6] = _rule_feats(c)


def _rule_feats(c: Context) -> list[str]:
    """The first features of a context, those that carry the rule's decision."""
    role = c.role or "none"
    return [f"rule={c.label}", f"role={role}", f"kind={c.kind}", f"kr={c.kind}|{role}",
            f"rk={c.kind}|{c.label}", f"why={c.evidence.split(':')[0]}"]


def _part_tense(out: list[Context], sentences: Sequence[Sentence]) -> None:
    """Sentences without a section role take the tense of their part: a part that mostly reports
    things done (了, figures, 取得) is an account of achievements, one that mostly demands is a plan."""
    done: dict[int, int] = {}
    todo: dict[int, int] = {}
    size: dict[int, int] = {}
    for c in out:
        size[c.part] = size.get(c.part, 0) + 1
        if "done" in c.hits and "measure_open" not in c.hits:
            done[c.part] = done.get(c.part, 0) + 1
        elif "measure_open" in c.hits or "future" in c.hits:
            todo[c.part] = todo.get(c.part, 0) + 1
    for c, s in zip(out, sentences, strict=True):
        d, m = done.get(c.part, 0), todo.get(c.part, 0)
        share = (d + m) / max(1, size.get(c.part, 1))
        tense = ("strength" if d >= 3 and d >= 3 * m else "measure" if m >= 3 and m >= 3 * d else None
                 ) if share >= 0.4 else None
        c.tail.append(f"tense={tense}")
        if tense is None or c.role is not None or s.evidence in ("furniture", "toc", "table"):
            continue
        if c.evidence.startswith("heading:bare") or c.evidence == "default" and s.is_heading:
            continue
        if len(s.text) <= 30 and not _TERMINAL.search(s.text) and not s.text.rstrip().endswith(("，", ",")):
            continue  # a title, byline or "序": not an account of anything
        if c.evidence == "default" or (c.conf <= 0.5 and c.label in ("strength", "measure", "other")
                                       and not c.evidence.startswith("heading:names")):
            c.label, c.conf, c.evidence = tense, 0.5, f"part:{'done' if tense == 'strength' else 'to do'}"


def _part_role(kind: str, head: Heading, parts: int, passed_strength: bool) -> str | None:
    """Role of a top-level part whose heading names no section (claim headings, gov parts)."""
    if head.pol == "gap":
        return "gap"
    if kind in ("gov", "speech"):
        if head.pol == "strength" and not passed_strength:
            return "strength"
        if parts == 1 and not passed_strength:
            return "strength"
        return "measure"
    if kind == "summary":
        return "strength"
    if kind == "plan":
        return "measure"
    if kind == "report" and head.pol in (None, "strength") and not cues("measure_open").search(
            strip_marker(head.text)):
        # a practice article (经验材料): its parts are headed by claims of what was done
        # ("一、营造…氛围，不断强化学习意识"); _practice_tense turns a part that demands into measure
        return "practice"
    return head.pol if head.pol in ("strength", "measure") else None


def _body(text: str, body: str, hits: list[str], found: dict[str, re.Match[str] | None], role: str | None,
          rwhy: str, kind: str, gap_mode: bool, first_in_para: bool) -> tuple[str, float, str, bool]:
    """Label of a body sentence (``body``: its text with the list marker stripped) given its section
    role (rules 1, 3, 4 and the passage state)."""
    h = set(hits)
    if "other" in h:
        m = found["other"]
        return "other", 0.75, f"cue:{m.group(0)[:12] if m else 'other'}", False
    if "gap_intro" in h and role in (None, "strength", "gap", "measure") and "measure_open" not in h:
        return "gap", 0.75, "cue:problems follow", True
    if "contrast" in h and role != "cause" and not gap_mode:
        # rule 4: "虽然取得了…，但…仍时有发生" is filed under its main clause, the one after 但
        m = found["contrast"]
        rest = body[m.end():] if m else ""
        if cues("gap").search(rest) or cues("gap_intro").search(rest):
            return "gap", 0.65, "cue:but (main clause)", False
    if gap_mode and first_in_para and "gap" not in h and not MARKER.match(text):
        gap_mode = False  # a new paragraph that neither lists nor names a problem ends the passage
    if gap_mode:
        if "cause" in h and kind != "gov":
            return "cause", 0.6, "cue:reason", True
        if "measure_open" in h:
            return "measure", 0.7, "cue:response to problems", False
        return "gap", 0.7, "passage:problems", True
    if role == "cause":
        if "measure_open" in h and "done" not in h:
            return "measure", 0.55, "cue:demand", False
        return "cause", 0.75, rwhy, False
    if role == "gap":
        if "measure_open" in h:
            return "measure", 0.6, "cue:demand", False
        if "cause" in h and kind != "gov":
            return "cause", 0.55, "cue:reason", False
        if "done" in h and "gap" not in h and re.match(r"^(有的|有些|部分|一些)", body):
            return "strength", 0.5, "cue:done (contrast)", False
        return "gap", 0.75, rwhy, False
    if role == "measure":
        return "measure", 0.75, rwhy, False
    if role == "other":  # a section of neutral facts: only a named shortcoming stands out
        if "gap" in h and "gap_addressed" not in h:
            return "gap", 0.5, "cue:problem", False
        return "other", 0.7, rwhy, False
    if "cause" in h and "done" in h and "gap" not in h:
        pass  # "由于…，进一步激发了…" explains a success, not a gap: the section decides
    elif "cause" in h and kind != "gov" and role in ("strength", "measure"):
        return "cause", 0.55, "cue:reason", False  # an explicit reason (由于 / 原因是) explains a gap
    if role == "strength":
        if "gap" in h and "done" not in h and "measure_open" not in h and "gap_addressed" not in h:
            return "gap", 0.55, "cue:problem", False
        if re.match(r"^我们(一定|将|要)", body):
            return "measure", 0.6, "cue:pledge", False
        return "strength", 0.75, rwhy, False
    # no section role: the sentence's own words (rule 3 and 4)
    pol, pwhy = polarity(text, found)
    if pol == "measure" or (pol is None and "future" in h):
        return "measure", 0.55, pwhy or "cue:future", False
    if pol is not None:
        return pol, 0.5, pwhy, False
    if kind == "speech" and "measure" in h:
        return "measure", 0.45, "kind:speech", False
    if kind in ("report", "summary") and "practice" in h:
        # a practice article or summary describes what the unit does, often without 了
        return "strength", 0.45, "practice:action", False
    return "other", 0.4, "default", False


def _bucket(x: float, edges: Sequence[float]) -> int:
    for k, e in enumerate(edges):
        if x < e:
            return k
    return len(edges)


def _features(s: Sentence, body: str, marked: bool, ctx: Context, hits: list[str], head: Heading | None,
              pos: float, stack: _Stack, gap_mode: bool, first_in_para: bool) -> list[str]:
    role = ctx.role or "none"
    f = _rule_feats(ctx) + [
         f"pos={_bucket(pos, (0.05, 0.2, 0.4, 0.6, 0.8))}",
         f"len={_bucket(len(s.text), (8, 16, 30, 60, 120))}", f"claim={stack.claim()}"]
    if head is not None:
        f += ["head", f"head|named={bool(head.named)}", f"head|pol={head.pol}", f"head|{head.mark}"]
    if s.evidence in ("furniture", "toc", "table"):
        f.append(f"struct={s.evidence}")
    if gap_mode:
        f.append("gapmode")
    if first_in_para:
        f.append("para1")
    if marked:
        f.append("marker")
    for c in hits:
        if c in _RULE_ONLY:
            continue
        f += [f"c={c}", f"c={c}|{role}"]
    f.append(f"end={s.text.rstrip()[-1:] if s.text.strip() else ''}")
    f.append(f"b2={body[:2]}")
    f.append(f"b1={body[:1]}")
    return f


def lexical_feats(body: str, tokens: Sequence[str]) -> list[str]:
    """Words (of two characters or more), the first word and the character bigrams of the
    marker-stripped text. ``learner.Model.matrix`` finds the same features without these strings."""
    f = ["w=" + w for w in tokens if len(w) > 1]
    if tokens:
        f.append(f"w0={tokens[0]}")
    f += ["c2=" + body[k:k + 2] for k in range(len(body) - 1)]
    return f


def _neighbours(out: list[Context], sentences: Sequence[Sentence]) -> None:
    """Neighbour and paragraph-opening rule labels (the guide judges a sentence with its context)."""
    para_label: dict[tuple[str, int], str] = {}
    for k, (c, s) in enumerate(zip(out, sentences, strict=True)):
        para_label.setdefault((s.article_id, s.para), c.label)
        prev_l = out[k - 1].label if k else "start"
        next_l = out[k + 1].label if k + 1 < len(out) else "end"
        c.tail += [f"prev={prev_l}", f"next={next_l}", f"pn={prev_l}|{next_l}",
                    f"p1={para_label[(s.article_id, s.para)]}", f"rp={c.label}|{prev_l}"]
