"""The tagger's shortcuts (issue 8) give exactly what the plain computations give: cue searches with
the pattern-derived tests against the bare regular expressions, the model's rows found from words
and text against the rows of the feature strings, on real reports and on tricky patterns."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from conftest import SAMPLE, SHARED

from pipeline.dictionaries import dictionary_dirs
from pipeline.ingest import ingest_file
from pipeline.run import STAGES
from pipeline.tag import _article_kinds
from pipeline.tag.features import _CUE_LISTS, Context, analyse, lexical_feats
from pipeline.tag.learner import IntIds, feature_rows, load_model
from pipeline.tag.prefilter import first_class, needed_chars, start_class
from pipeline.tag.rules import cue_matches, cues, strip_marker


@pytest.fixture(scope="module")
def docs() -> list:
    """Three sample reports and two government work reports, through the stages before tag."""
    files = sorted(SAMPLE.glob("*.txt"))[:3] + sorted((SHARED / "corpus" / "gov2026").glob("*.txt"))[:2]
    out = []
    for f in files:
        d = ingest_file(f, f.name)
        for name, stage in STAGES:
            if name != "tag":
                d = stage(d)
        assert d.status == "ok", d.reason
        out.append(d)
    return out


def _span(m: re.Match[str] | None) -> tuple[int, int, str] | None:
    return None if m is None else (m.start(), m.end(), m.group(0))


def _plain(name: str, text: str) -> re.Match[str] | None:
    """What a cue list finds without any shortcut: the anchored patterns at the start, else the rest."""
    c = cues(name)
    m = c.start.match(text) if c.start is not None else None
    return m if m is not None or c.rest is None else c.rest.search(text)


def _cue_names() -> list[str]:
    names = {f.stem for d in dictionary_dirs() for f in (d / "cues").glob("*.txt")}
    return sorted(names - {"kind"})  # kind.txt is a table (kind, pattern), not a cue list


def test_cue_search_is_the_plain_regex_search(docs: list) -> None:
    names = _cue_names()
    assert set(_CUE_LISTS) <= set(names)
    texts = [t for d in docs for s in d.sentences for t in (s.text, strip_marker(s.text))]
    assert len(texts) > 1000
    found = 0
    for t in texts:
        for n in names:
            want = _span(_plain(n, t))
            assert _span(cues(n).search(t)) == want, (n, t)
            found += want is not None
        together = cue_matches(t, _CUE_LISTS)
        assert {n: _span(m) for n, m in together.items()} == {n: _span(_plain(n, t)) for n in _CUE_LISTS}, t
    assert found > 500  # the texts do hold cues: the comparison is not of Nones only


# patterns with look-behind, anchors, optional openings, classes, categories, lazy and empty matches
TRICKY = [r"(?<=要)求", r"^(但|但是)[，,]?也", r"\d+(名|个)", r"(主要|根本)?原因(是|在于)", r"要[^，。]{0,3}加强",
          r"a|b?", r"(?:不够|不足)", r".{0,12}目标", r"(有关|相关)。?$", r"(?i)ab", r"[一-十]{2}问题",
          r"(?=不)不足|短板", r"\s*(首先|其次)", r"[^不]足", r"(虽然|虽)[^。]{1,8}?，\s*(但是?|却)", r"ab*c|d\b",
          r"(不断|逐步)?(提高|增强)", r"(三|五|几)年(多)?来", r"要(?!求)", r"共(计|有)?\d", r"a+b|ca*d", r"(ab)*c",
          r"不(够|足)?了", r"(?:是|为).{0,3}(目标|关键)|有(关|效)"]
# texts are random strings of these pieces: the patterns' own words, their neighbours and others
PIECES = ["要", "求", "但", "但是", "是", "，", ",", "也", "1", "2", "名", "个", "主要", "根本", "原因", "在于",
          "加强", "a", "b", "c", "d", "不", "够", "足", "不足", "目标", "有关", "相关", "。", "一二", "十",
          "问题", "短板", "首先", "其次", "虽然", "却", " ", "\n", "工作", "了", "三", "五", "几", "年", "多", "来",
          "计", "共", "提高", "增强", "逐步", "不断", "为", "关键", "有", "效"]


@pytest.mark.parametrize("pattern", TRICKY)
def test_pattern_tests_never_skip_a_match(pattern: str) -> None:
    rx = re.compile(pattern)
    needs = needed_chars(rx)
    first = first_class(rx)
    starts = start_class(rx)
    rng = random.Random(pattern)
    own = re.findall(r"[\u4e00-\u9fff，。a-z]", pattern) * 3  # the pattern's own characters, often
    texts = ["".join(rng.choice(PIECES + own) for _ in range(rng.randint(0, 9))) for _ in range(20000)]
    matched = skipped = 0
    for t in texts:
        m = rx.search(t)
        matched += m is not None
        if m is None:
            skipped += any(need.isdisjoint(t) for need in needs) or (first is not None and not first.search(t))
            continue
        assert all(not need.isdisjoint(t) for need in needs), (pattern, t)
        if first is not None:
            at = first.search(t)
            assert at is not None and at.start() <= m.start(), (pattern, t)
            assert _span(rx.search(t, at.start())) == _span(m)
        if starts is not None:  # trying the places it finds, in order, finds the same match
            tried = (rx.match(t, at.start()) for at in starts.finditer(t))
            assert _span(next((x for x in tried if x is not None), None)) == _span(m), (pattern, t)
    assert matched >= 5, "the random texts seldom match: the test would prove little"
    assert skipped > 0 or (not needs and first is None), "the tests never skip a search"


def test_pattern_tests_are_given_where_they_help_and_not_where_unsound() -> None:
    assert first_class(re.compile("a|b?")) is None  # matches the empty string anywhere
    assert first_class(re.compile(".{0,12}目标")) is None  # any character may come first
    assert needed_chars(re.compile("(?i)ab")) == ()  # case folding: other characters match
    assert first_class(re.compile(r"(主要|根本)?原因")).pattern == "[主原根]"
    assert start_class(re.compile(r"(主要|根本)?原因")).pattern == "主(?=[要])|原(?=[因])|根(?=[本])"
    assert start_class(re.compile(r"进一步|是.{0,3}关键|\d+名")) is None  # \d: no list of characters
    assert start_class(re.compile(r"进一步|是.{0,3}关键")).pattern == "是|进(?=[一])"
    assert needed_chars(re.compile("不够|不足")) == (frozenset("不"),)  # parsed as 不(?:够|足)
    assert set(needed_chars(re.compile("(困难|短板)"))) == {frozenset("困短"), frozenset("难板")}


def test_model_rows_are_those_of_the_feature_strings(docs: list) -> None:
    model = load_model()
    assert model is not None
    for d in docs:
        ctx = analyse(d.sentences, [a.title for a in d.articles[:1]], d.source, _article_kinds(d))
        fast = model.matrix(ctx)
        plain = feature_rows([c.feats for c in ctx], model.vocab, model.scale)
        for a, b in zip(fast[:3], plain[:3], strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        assert fast.n_features == plain.n_features
        assert len(plain.indices) > 20 * len(ctx)  # words and bigrams are in: not empty rows
    # the strings keep their order (training assigns vocabulary ids in it): context, lexical, tail
    c = ctx[len(ctx) // 2]
    assert c.feats == c.head + lexical_feats(c.body, c.tokens) + c.tail
    assert c.feats[0].startswith("rule=") and c.feats[-1].startswith("rp=")


def test_int_ids_look_up_like_a_dict() -> None:
    rng = np.random.default_rng(8)
    keys = np.unique(rng.integers(0, 1 << 42, 5000))
    table = {int(k): i for i, k in enumerate(keys)}
    ids = IntIds(table)
    probe = np.concatenate([keys, rng.integers(0, 1 << 42, 5000), keys[:10]])
    want = np.array([table.get(int(k), -1) for k in probe])
    assert np.array_equal(ids.get(probe), want)
    assert np.array_equal(IntIds({}).get(probe[:5]), np.full(5, -1))


def test_model_rows_of_odd_texts() -> None:
    """Empty texts, no words, a lone surrogate, no sentences at all: still the strings' rows."""
    model = load_model()
    assert model is not None
    ctx = [Context("other", 0.4, "default", None, "report", head=["rule=other"], body="", tokens=[]),
           Context("gap", 0.7, "cue:不足", "gap", "report", head=["rule=gap"], body="工作\ud800总结不足",
                   tokens=["工作", "x", ""], tail=["prev=start"]),
           Context("other", 0.4, "default", None, "report", body="a")]
    for batch in (ctx, ctx[:1], []):
        fast = model.matrix(batch)
        plain = feature_rows([c.feats for c in batch], model.vocab, model.scale)
        assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(fast[:3], plain[:3], strict=True))
    assert len(model.matrix(ctx).indices) > 4  # known words and bigrams were found
