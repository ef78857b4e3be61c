"""Recurring problems: gap (and, separately, cause and measure) statements grouped across units.

Method (chosen by measurement against ``tests/data/problem_groups.jsonl``, see the README section):
a gap sentence that lists several problems is split into its clauses and only clauses that state a
problem are kept; each item becomes a TF-IDF vector over content words plus character 2–3-grams;
agglomerative clustering (average linkage, cosine distance) cut at a distance threshold, so the
number of groups comes from the data. Large seasons are first split into blocks of similar items
(k-means on a low-rank projection) and clustered block by block, which keeps memory and time
roughly linear. A group is *recurring* when its members come from at least two units (or articles,
when units are unknown); only recurring groups are written.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..dictionaries import read_lines, read_table
from ..resources import process_model
from .matrix import content_sentences
from .text import (
    clause_words,
    content_words,
    group_key_list,
    ipc_bytes,
    read_ipc,
    tfidf_matrix,
    token_lists,
    unit_list,
)

if TYPE_CHECKING:
    import scipy.sparse as sp

PROBLEM_LABELS = ("gap", "cause", "measure")
#: cosine distance at which groups stop merging; chosen on the hand grouping (tests/data)
DISTANCE_THRESHOLD = 0.85
#: weight of the character n-gram half of the vectors against the word half (measured, see README)
CHAR_WEIGHT = 0.5
#: largest set clustered in one piece (an n × n distance matrix); bigger sets are blocked first
BLOCK_SIZE = 1500
MIN_ITEM_CHARS = 4

COLUMNS = ["cluster_id", "cluster_name", "label", "unit", "doc_id", "article_id", "text", "sentence",
           "page", "idx", "n_units", "n_members"]


@cache
def _problem_cue() -> re.Pattern[str]:
    pats = list(read_lines("cues/gap.txt")) + list(read_lines("problem_cues.txt"))
    return re.compile("|".join(f"(?:{p})" for p in pats))


@cache
def _intro() -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in read_lines("problem_intro.txt")))


@cache
def _generic() -> frozenset[str]:
    return frozenset(read_lines("problem_generic.txt"))


@cache
def _synonyms() -> dict[str, tuple[str, ...]]:
    return {row[0]: row[1:] for row in read_table("problem_synonyms.txt") if len(row) > 1}


def topic_words(text: str) -> list[str]:
    """Content words that say which problem it is: generic problem words left out, synonyms added."""
    return topic_from_words(content_words(text))


def topic_from_words(words: Iterable[str]) -> list[str]:
    """``topic_words`` from a text's content words (already cut)."""
    return _topics([words])[0]


def _topics(word_lists: Iterable[Iterable[str]]) -> list[list[str]]:
    """``topic_from_words`` of many word lists: each distinct word's topic words (none for a
    generic word, else itself and its synonyms) looked up once, each list then chained."""
    generic, syn = _generic(), _synonyms()
    lists = [ws if isinstance(ws, list) else list(ws) for ws in word_lists]
    expand = {w: () if w in generic else (w, *syn.get(w, ())) for w in {w for ws in lists for w in ws}}
    return [list(chain.from_iterable(map(expand.__getitem__, ws))) for ws in lists]


def _split(text: str, tokens: Sequence[str] | None, label: str) -> list[tuple[str, list[str]]]:
    """(statement, its content words) for every problem statement inside one sentence."""
    if label == "measure":
        parts = clause_words(text, tokens, strong_only=True)
        return [(p, ws) for p, ws in parts if len(p) >= MIN_ITEM_CHARS]
    cue, intro = _problem_cue(), _intro()
    every = clause_words(text, tokens)
    parts = [(p, ws) for p, ws in every if len(p) >= MIN_ITEM_CHARS and not intro.search(p)]
    stating = [(p, ws) for p, ws in parts if cue.search(p)]
    if len(stating) >= 2:
        return stating
    whole = text.strip()
    if len(whole) < MIN_ITEM_CHARS or not parts:
        return []
    return [(whole, [w for _, ws in every for w in ws])]  # the sentence's content words


def split_items(text: str, label: str) -> list[str]:
    """The problem statements inside one sentence.

    A gap/cause sentence such as "主要是：内需动能不足，消费场景供需适配性不强，…" holds several
    problems: keep each clause that states one (a cue word), dropping announcing clauses
    ("我们也清醒认识到"). Measures are kept per sentence part (split on ；only) — they are long
    task lists whose clauses mean little alone.
    """
    return [p for p, _ in _split(text, None, label)]


ITEM_COLUMNS = ["label", "unit", "key", "doc_id", "article_id", "text", "sentence", "page", "idx",
                "theme", "words"]


def problem_items(sentences: pd.DataFrame, labels: tuple[str, ...] = PROBLEM_LABELS) -> pd.DataFrame:
    """One row per problem statement (a clause or a sentence) of the given labels, with its
    content words (``words``) taken from the segment stage's tokens."""
    return _items_frame(_statements(sentences, labels))


def _items_frame(rows: list[tuple[Any, ...]] | None) -> pd.DataFrame:
    if rows is None:
        return pd.DataFrame(columns=ITEM_COLUMNS)
    out = pd.DataFrame.from_records(rows, columns=ITEM_COLUMNS)
    out["page"] = out["page"].astype("Int64")
    return out


def _statements(sentences: pd.DataFrame, labels: tuple[str, ...]) -> list[tuple[Any, ...]] | None:
    """``problem_items`` as row tuples (ITEM_COLUMNS), the columns' values as pandas gives them
    (``tolist``); None when no sentence has one of the labels. Columns are read as plain lists
    and only the labelled rows picked (a frame selection copies all ~18 columns)."""
    s = content_sentences(sentences)
    pos = np.flatnonzero(s["label"].isin(labels).to_numpy()).tolist()
    if not pos:
        return None

    def pick(values: list[Any]) -> list[Any]:
        return [values[i] for i in pos]

    # each column's values as pandas gives them, fetched once; "" where a column is absent
    raw = {c: s[c].tolist() for c in ("text", "label", "doc_id", "article_id", "page", "idx",
                                      "theme", "unit", "tokens") if c in s}

    def col(name: str) -> list[Any]:
        return pick(raw[name]) if name in raw else [""] * len(pos)

    texts, labs, doc_id, article_id, page, idx, theme = map(
        col, ("text", "label", "doc_id", "article_id", "page", "idx", "theme"))
    unit, key = pick(unit_list(s, raw)), pick(group_key_list(s, raw))
    toks = token_lists(col("tokens")) if "tokens" in raw else [None] * len(pos)
    rows = []
    for k, (text, label, tk) in enumerate(zip(texts, labs, toks, strict=True)):
        for item, words in _split(text, tk, label):
            rows.append((label, unit[k], key[k], doc_id[k], article_id[k], item, text, page[k],
                         idx[k], theme[k], words))
    return rows


def _cluster_block(x: sp.csr_matrix, threshold: float) -> np.ndarray:
    # sklearn's AgglomerativeClustering, labels and all, without importing sklearn (~1 s)
    from .grouping import average_linkage_groups

    n = x.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    sim = (x @ x.T).toarray()
    dist = np.clip(1.0 - sim, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    return average_linkage_groups(dist, threshold)


def cluster_texts(texts: list[str], threshold: float = DISTANCE_THRESHOLD,
                  block_size: int = BLOCK_SIZE, word_lists: list[list[str]] | None = None,
                  themes: Sequence[str] | None = None,
                  memo: MutableMapping[str, Any] | None = None) -> np.ndarray:
    """A group number per text; similar texts share a number. Identical texts are clustered once.

    ``word_lists``: the content words of each text when already known (else the texts are cut).
    ``themes``: the theme of each text's sentence, the first key of the blocks a set larger than
    ``block_size`` is split into. Each block is vectorised (TF-IDF fitted on the block alone) and
    clustered on its own, and its grouping is kept in ``memo`` under a hash of its content, so a
    season where one file changed re-clusters only the blocks that file's items fall in.
    """
    if not texts:
        return np.zeros(0, dtype=int)
    # np.unique sorts: the numbering never depends on input order of duplicates or on hashing
    uniq, first, inverse = np.unique(np.asarray(texts, dtype=object), return_index=True,
                                     return_inverse=True)
    if word_lists is None:
        uniq_words = [topic_words(t) for t in uniq]
    else:
        uniq_words = [topic_from_words(word_lists[i]) for i in first]
    theme_of = [str(themes[i]) if themes is not None else "" for i in first]
    labels = _unique_groups(uniq.tolist(), uniq_words, theme_of, threshold, block_size, memo)
    return labels[np.ravel(inverse)]


def _unique_groups(uniq: list[str], uniq_words: list[list[str]] | list[str], theme_of: list[str],
                   threshold: float, block_size: int, memo: MutableMapping[str, Any] | None,
                   anchors: np.ndarray | None = None, block_of: np.ndarray | None = None
                   ) -> np.ndarray:
    """``cluster_texts`` of distinct texts in sorted order, with their topic words and themes.
    ``block_of``: filled with each text's block number when given."""
    n = len(uniq)
    labels = np.zeros(n, dtype=int)
    if n <= block_size:
        blocks = [np.arange(n)]
    else:
        blocks = (item_blocks(uniq, uniq_words, theme_of, block_size) if anchors is None
                  else anchor_blocks(anchors, theme_of, block_size))
    next_id = 0
    for b, idx in enumerate(blocks):
        if block_of is not None:
            block_of[idx] = b
        il = idx.tolist()
        sub = _block_groups([uniq[i] for i in il], [uniq_words[i] for i in il], threshold, memo)
        labels[idx] = sub + next_id
        next_id += int(sub.max()) + 1
    return labels


def _block_groups(texts: list[str], words: list[list[str]] | list[str], threshold: float,
                  memo: MutableMapping[str, Any] | None) -> np.ndarray:
    """Agglomerative groups of one block (texts sorted, unique); memoised by content. ``words``:
    each text's topic words, as a list or space-joined."""
    key = None
    if memo is not None:
        h = hashlib.blake2b(f"{threshold!r}|{CHAR_WEIGHT!r}".encode(), digest_size=20)
        for t, ws in zip(texts, words, strict=True):
            joined = ws if isinstance(ws, str) else " ".join(ws)
            h.update(t.encode("utf-8") + b"\x1f" + joined.encode("utf-8") + b"\x1e")
        key = "problems-block-" + h.hexdigest()
        hit = memo.get(key)
        if hit is not None:
            return np.asarray(hit, dtype=int)
    lists = [(ws.split(" ") if ws else []) if isinstance(ws, str) else ws for ws in words]
    x = tfidf_matrix(texts, lists, char_weight=CHAR_WEIGHT)
    sub = _cluster_block(x, threshold)
    if memo is not None and key is not None:
        memo[key] = sub.astype(np.int32)
    return sub


#: depth limit of the item-local sub-split (2**16 leaves: never reached in practice)
MAX_SPLIT_DEPTH = 16


def item_blocks(texts: list[str], words: list[list[str]], themes: list[str],
                block_size: int = BLOCK_SIZE) -> list[np.ndarray]:
    """Blocks of a large set, every item's block decided by the item alone.

    First key: the sentence's theme. A theme block still larger than ``block_size`` is halved
    by one bit of a stable hash of the item's *anchor* (its most specific topic word, by the
    fixed jieba dictionary frequency), bit after bit, until the pieces fit: items sharing their
    anchor stay together, and a new item changes only the block it falls in (plus, when it
    makes a block cross ``block_size``, the split of that block). Texts come sorted; blocks keep
    that order.
    """
    return anchor_blocks(np.array(_anchor_hashes(texts, words), dtype=np.uint64), themes, block_size)


def anchor_blocks(anchors: np.ndarray, themes: list[str], block_size: int = BLOCK_SIZE
                  ) -> list[np.ndarray]:
    """``item_blocks`` from the items' anchor hashes (uint64), e.g. computed per file."""
    by_theme: dict[str, list[int]] = {}
    for i, th in enumerate(themes):
        by_theme.setdefault(th, []).append(i)
    out: list[np.ndarray] = []
    for th in sorted(by_theme):
        stack = [(np.asarray(by_theme[th], dtype=np.int64), 0)]
        while stack:
            idx, depth = stack.pop()
            if len(idx) <= block_size or depth >= MAX_SPLIT_DEPTH:
                out.append(idx)
                continue
            bit = ((anchors[idx] >> np.uint64(depth)) & np.uint64(1)).astype(bool)
            # right half pushed first: blocks come out in a fixed order
            stack += [(idx[bit], depth + 1), (idx[~bit], depth + 1)]
    return [b for b in out if len(b)]


def _anchor_hashes(texts: list[str], words: list[list[str]]) -> list[int]:
    """``_anchor_hash`` of every item: ``_specificity`` of each distinct word computed once, the
    anchor is the item's word of least specificity, each distinct anchor hashed once."""
    freq = _dict_freq()  # the dictionary looked up once, not per word
    spec = {w: (freq.get(w, 0), -len(w), w) for w in {w for ws in words for w in ws}}
    least = spec.__getitem__
    hashes: dict[str, int] = {}
    out = []
    for t, ws in zip(texts, words, strict=True):
        a = min(ws, key=least) if ws else t
        h = hashes.get(a)
        if h is None:
            h = hashes[a] = int.from_bytes(hashlib.blake2b(a.encode("utf-8"), digest_size=8).digest(),
                                           "little")
        out.append(h)
    return out


def _anchor_hash(text: str, words: list[str]) -> int:
    """A stable 64-bit hash of the item's anchor word (its text when it has no topic word)."""
    anchor = min(words, key=_specificity) if words else text
    return int.from_bytes(hashlib.blake2b(anchor.encode("utf-8"), digest_size=8).digest(), "little")


def _specificity(w: str) -> tuple[int, int, str]:
    """Rarer in jieba's dictionary first, then longer, then the word itself (never set order)."""
    return (_dict_freq().get(w, 0), -len(w), w)


@process_model
def _dict_freq() -> dict[str, int]:
    from ..segment import tokenizer

    return tokenizer().FREQ


def cluster_name(texts: list[str], n_terms: int = 3,
                 word_lists: list[list[str]] | None = None) -> str:
    """Key terms of a group: the content words most members share.

    Ties: the longer word, then the word itself (code-point order) — never the order of a set,
    which changes with PYTHONHASHSEED.
    """
    df: Counter[str] = Counter()
    for i, t in enumerate(texts):
        words = content_words(t) if word_lists is None else list(word_lists[i])
        df.update(set(topic_from_words(words)) or set(words))
    ranked = sorted(df.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
    return "、".join(w for w, _ in ranked[:n_terms]) or (texts[0][:12] if texts else "")


PART_COLUMNS = ["label", "unit", "key", "doc_id", "article_id", "text", "sentence", "page", "idx",
                "theme", "words", "topic", "anchor"]


def problem_part(sentences: pd.DataFrame, labels: tuple[str, ...] = PROBLEM_LABELS) -> pd.DataFrame:
    """One file's problem items, their content words space-joined (one string, not a list, per
    item: compact to store and to load)."""
    return _part_frame(problem_items(sentences, labels))


def _part_frame(items: pd.DataFrame) -> pd.DataFrame:
    """Items as stored in a part: content words space-joined, and what depends on the item
    alone computed here, in the file's worker, not in the season combine: its topic words
    (space-joined) and the hash of its anchor word (``item_blocks``)."""
    if items.empty:
        return pd.DataFrame(columns=PART_COLUMNS)
    if "theme" not in items:
        items = items.assign(theme="")
    words, topics, anchors = _item_words(items["words"].tolist(), items["text"].tolist())
    return items.assign(words=words, topic=topics,
                        anchor=np.array(anchors, dtype=np.uint64))[PART_COLUMNS]


def _item_words(words: list[list[str]], texts: list[str]) -> tuple[list[str], list[str], list[int]]:
    """Per item: its content words and its topic words, space-joined, and its anchor hash."""
    topics = _topics(words)
    anchors = _anchor_hashes(texts, topics)
    return [" ".join(ws) for ws in words], [" ".join(t) for t in topics], anchors


def part_key(label: str) -> str:
    """The name of one label's items in a file's analyze parts (one value per label, so a combine
    loads only the labels whose season table must be rebuilt)."""
    return f"problems:{label}"


def problem_parts(sentences: pd.DataFrame, labels: tuple[str, ...] = PROBLEM_LABELS
                  ) -> tuple[dict[str, pa.Table], dict[str, str]]:
    """One file's items per label (``part_key(label)`` → Arrow table) and a content digest of
    each. Arrow, not a pickled DataFrame: a season combine loads 1,000 of them (buffers unpickle
    at memory speed) and concatenates them without copying.

    The items of a run's rows (``_plain``) go from Python lists straight to Arrow and to their
    digests (``_plain_parts``): the tables and digests the items' frame gives (``_frame_parts``,
    taken for anything else), without a dozen pandas steps per label on a few hundred rows."""
    rows = _statements(sentences, labels)
    if rows:
        cols = dict(zip(ITEM_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
        if _plain(cols):
            cols["words"], cols["topic"], cols["anchor"] = _item_words(cols["words"], cols["text"])
            return _plain_parts(cols, labels)
    return _frame_parts(_part_frame(_items_frame(rows)), labels)


def _frame_parts(items: pd.DataFrame, labels: tuple[str, ...]
                 ) -> tuple[dict[str, pa.Table], dict[str, str]]:
    """``problem_parts`` from the items' frame (``_part_frame``)."""
    parts: dict[str, pa.Table] = {}
    digests: dict[str, Any] = {}
    for label in labels:
        it = items[items["label"] == label].reset_index(drop=True) if len(items) else items
        parts[part_key(label)] = _to_arrow(it)
        digests[part_key(label)] = frame_digest(it)
        digests[SHAPE + part_key(label)], digests[IDS + part_key(label)] = _shape(it)
    return parts, digests


#: the item columns of text: in a run's rows each value is a ``str``
_TEXT_COLUMNS = ("label", "unit", "key", "doc_id", "article_id", "text", "sentence", "theme")


def _plain(cols: Mapping[str, list[Any]]) -> bool:
    """Whether the items' columns hold what a run's rows give, so that their frame has the dtypes
    ``_part_schema`` is made of: text all ``str`` (none missing), ``idx`` all ``int``, ``page``
    ``int`` or ``pd.NA`` (an ``Int64`` column's ``tolist``)."""
    return (all(set(map(type, cols[c])) <= {str} for c in _TEXT_COLUMNS)
            and set(map(type, cols["idx"])) <= {int}
            and set(map(type, cols["page"])) <= {int, type(pd.NA)})


@cache
def _part_schema() -> pa.Schema:
    """The Arrow schema, pandas metadata included (the combine's frames get their dtypes from
    it), ``_to_arrow`` gives the items of a run's rows."""
    dtypes = {c: "str" for c in PART_COLUMNS} | {"page": "Int64", "idx": "int64", "anchor": "uint64"}
    empty = pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})
    return pa.Schema.from_pandas(empty, preserve_index=False)


def _plain_parts(cols: Mapping[str, list[Any]], labels: tuple[str, ...]
                 ) -> tuple[dict[str, pa.Table], dict[str, str]]:
    """``_frame_parts`` from the items' columns as lists (PART_COLUMNS, ``_plain``): per label the
    same Arrow table, ``frame_digest`` and ``_shape``."""
    schema = _part_schema()
    rest = [c for c in PART_COLUMNS if c not in _ID_COLUMNS]  # what ``_shape`` hashes, then "ids"
    parts: dict[str, pa.Table] = {}
    digests: dict[str, Any] = {}
    for label in labels:
        sel = [k for k, lab in enumerate(cols["label"]) if lab == label]
        sub = {c: [cols[c][k] for k in sel] for c in PART_COLUMNS}
        parts[part_key(label)] = pa.Table.from_arrays(
            [pa.array(sub[c], type=schema.field(c).type, from_pandas=True) for c in PART_COLUMNS],
            schema=schema)
        joined = {c: _joined(sub[c]) for c in PART_COLUMNS}  # hashed by both digests
        full = _hash(PART_COLUMNS, len(sel), [joined[c] for c in PART_COLUMNS])
        if not sel:  # ``_shape`` of no items
            digests[part_key(label)] = digests[SHAPE + part_key(label)] = full
            digests[IDS + part_key(label)] = []
            continue
        index: dict[tuple[Any, Any], int] = {}
        codes = [index.setdefault(pair, len(index))
                 for pair in zip(sub["doc_id"], sub["article_id"], strict=True)]
        digests[part_key(label)] = full
        digests[SHAPE + part_key(label)] = _hash(rest + ["ids"], len(sel),
                                                 [joined[c] for c in rest] + [_joined(codes)])
        digests[IDS + part_key(label)] = list(index)
    return parts, digests


#: in a file's digests: the digest of its items with their ids as codes, and those ids
SHAPE, IDS = "shape:", "ids:"
_ID_COLUMNS = ["doc_id", "article_id"]


def _shape(items: pd.DataFrame) -> tuple[str, list[tuple[Any, Any]]]:
    """A digest of a file's items with (doc_id, article_id) replaced by a code (in order of first
    appearance), and those pairs in that order. Any edit of a file gives it new ids: when its
    items are otherwise unchanged (the same shape), a season table only needs them renamed."""
    if items.empty:
        return frame_digest(items), []
    cols = [items[c].astype(object).where(items[c].notna(), None).tolist() if c in items
            else [None] * len(items) for c in _ID_COLUMNS]
    index: dict[tuple[Any, Any], int] = {}
    codes = [index.setdefault(pair, len(index)) for pair in zip(*cols, strict=True)]
    rest = items.drop(columns=[c for c in _ID_COLUMNS if c in items]).assign(ids=codes)
    return frame_digest(rest), list(index)


def _to_arrow(items: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(items, preserve_index=False)


def frame_digest(df: pd.DataFrame) -> str:
    """A content hash of a frame (column names and values as text; never Python's salted
    ``hash``). Per column one join of its values' ``repr``: a few hundred rows hash in well under
    a millisecond."""
    return _hash(list(df.columns), len(df), [_joined(df[c].tolist()) for c in df.columns])


def _joined(values: list[Any]) -> bytes:
    """One column's share of ``frame_digest``: its values' ``repr`` joined."""
    return "\x1f".join(map(repr, values)).encode("utf-8", "surrogatepass") + b"\x1e"


def _hash(columns: list[str], n: int, joined: list[bytes]) -> str:
    """``frame_digest`` of a frame of ``n`` rows from its column names and ``_joined`` values."""
    h = hashlib.blake2b(repr(columns).encode(), digest_size=16)
    h.update(str(n).encode())
    for j in joined:
        h.update(j)
    return h.hexdigest()


def combine_problems(parts: Sequence[Mapping[str, Any]], threshold: float = DISTANCE_THRESHOLD,
                     min_units: int = 2, labels: tuple[str, ...] = PROBLEM_LABELS,
                     memo: MutableMapping[str, Any] | None = None,
                     digests: Sequence[Mapping[str, str]] | None = None) -> pd.DataFrame:
    """problems.parquet from the files' items (``parts[i][part_key(label)]``): members of groups
    spanning at least ``min_units`` units, per label.

    ``memo``: each label's table, kept under the digests of its inputs (``digests[i][part_key]``,
    in file order), so a label none of whose files changed is one memo read and its items are not
    even loaded; a label whose files only got new ids is the last table renamed (``_renamed``);
    a label in which a few files' items changed is the last table updated (``_updated``: only the
    groups those items were or are in made again, from the grouping state kept with each table);
    and the block groupings of a label that is rebuilt (see ``cluster_texts``).
    """
    out_frames = []
    for label in sorted(labels):  # the table is sorted by label first
        key = None
        if memo is not None and digests is not None:
            h = hashlib.blake2b(repr((label, threshold, min_units, CHAR_WEIGHT, BLOCK_SIZE,
                                      MIN_ITEM_CHARS)).encode(), digest_size=20)
            for d in digests:
                h.update(d.get(part_key(label), "-").encode() + b"\x1e")
            key = "problems-label-" + h.hexdigest()
            hit = _memo_table(memo, key)
            if hit is not None:
                out_frames.append(hit.to_pandas())
                continue
            last = memo.get(LAST + label)
            ren = _renamed(label, digests, memo)
            if ren is not None:  # only ids changed: last run's table with the new ids
                df, recipe = ren
                # kept as a recipe on the table it renames (compressing ~100 MB of rows again
                # was half of a rerun's problems)
                memo[key] = recipe
                # the same items and groups: the last grouping state still holds, its rows
                # (``opos``) now in the renamed table's order
                new_last = _last(label, key, digests,
                                 last.get("state") if isinstance(last, dict) else None)
                before = recipe["base_order"]
                new_last["order"] = (recipe["order"] if before is None
                                     else before[recipe["order"]])
                memo[LAST + label] = new_last
                out_frames.append(df)
                continue
            upd = _updated(label, parts, digests, memo, threshold, min_units)
            if upd is not None:  # a few files' items changed: only their groups made again
                df, state, table = upd
                memo[key] = _table_bytes(table)  # (the frame's Arrow table: no round trip)
                memo[STATE + key] = state
                memo[LAST + label] = _last(label, key, digests, STATE + key)
                out_frames.append(df)
                continue
        tables, files = [], []
        for i, p in enumerate(parts):
            t = p[part_key(label)]
            if t.num_rows:
                tables.append(t)
                files.append(i)
        state: dict[str, Any] | None = {} if key is not None else None
        df = _combine_label(tables, label, threshold, min_units, memo, files, state)
        if key is not None and memo is not None and digests is not None:
            memo[key] = _frame_bytes(df)
            if state:
                memo[STATE + key] = state
            memo[LAST + label] = _last(label, key, digests, STATE + key if state else None)
        out_frames.append(df)
    out_frames = [f for f in out_frames if len(f)]
    if not out_frames:
        return pd.DataFrame(columns=COLUMNS).astype({"page": "Int64", "n_units": int, "n_members": int})
    return pd.concat(out_frames, ignore_index=True) if len(out_frames) > 1 else out_frames[0]


#: memo entry per label: the key of the last table made and its files' digests and ids
LAST = "problems-last-"


def _last(label: str, key: str, digests: Sequence[Mapping[str, Any]],
          state: str | None = None) -> dict[str, Any]:
    pk = part_key(label)
    return {"key": key, "state": state, "full": [d.get(pk, "-") for d in digests],
            "shape": [d.get(SHAPE + pk) for d in digests], "ids": [d.get(IDS + pk) for d in digests]}


def _renamed(label: str, digests: Sequence[Mapping[str, Any]],
             memo: MutableMapping[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The label's table when, since the last table made, files changed only the ids of their
    items (same shape, see ``_shape``): that table with those ids replaced and its rows sorted
    again — what a rebuild gives (the same items, groups, counts and names), without
    re-assembling the label from every file's items — and the recipe the memo keeps for it
    (``_memo_table``): the table it was renamed from (``base``, the last table stored whole),
    the ids renamed since (``map``), the rows' order (``order``, rows of ``base``) and the order
    of ``base`` relative to its grouping state (``base_order``). None when this does not apply."""
    pk = part_key(label)
    last = memo.get(LAST + label)
    if not isinstance(last, dict) or len(last["full"]) != len(digests):
        return None
    changed = []
    for i, d in enumerate(digests):
        if d.get(pk, "-") != last["full"][i]:
            if d.get(SHAPE + pk) is None or d.get(SHAPE + pk) != last["shape"][i]:
                return None
            changed.append(i)
    entry = memo.get(last["key"]) if changed else None
    if entry is None:
        return None
    if isinstance(entry, dict):  # the last table was itself a renamed one: rename its base
        base_key, prev_map, base_order = entry["base"], entry["map"], entry["base_order"]
    else:
        base_key, prev_map, base_order = last["key"], {}, last.get("order")
    mapping: dict[tuple[Any, Any], tuple[Any, Any]] = {}
    for i in changed:
        old, new = last["ids"][i], digests[i].get(IDS + pk)
        if old is None or new is None or len(old) != len(new):
            return None
        for a, b in zip(old, new, strict=True):
            if mapping.setdefault(tuple(a), tuple(b)) != tuple(b):
                return None
    # base ids → today's: the last renames followed by these
    composed = {a: mapping.get(b, b) for a, b in prev_map.items()}
    targets = set(prev_map.values())
    for b, c in mapping.items():
        if b not in targets and composed.setdefault(b, c) != c:
            return None
    old_docs = {a[0] for a in composed}
    if any(p[0] in old_docs for d in digests for p in (d.get(IDS + pk) or [])):
        return None  # a renamed id some file has today: its rows could not be told apart
    base = memo.get(base_key)
    if not isinstance(base, bytes):
        return None
    t = _rename_rows(read_ipc(base), composed)
    if t is None:
        return None
    # the rows in (cluster_id, unit, doc_id, idx, text) order, as _combine_label sorts them
    # (rows equal in all of these are equal in every column: their order does not show)
    order = (np.asarray(pc.sort_indices(t, sort_keys=[(c, "ascending") for c in
                                                      ("cluster_id", "unit", "doc_id", "idx",
                                                       "text")]), dtype=np.int64)
             if t.num_rows else np.zeros(0, dtype=np.int64))
    recipe = {"base": base_key, "map": composed, "order": order, "base_order": base_order}
    return _take_runs(t, order).to_pandas(), recipe


def _rename_rows(t: pa.Table, mapping: Mapping[tuple[Any, Any], tuple[Any, Any]]
                 ) -> pa.Table | None:
    """``t`` with the (doc_id, article_id) of its rows renamed by ``mapping`` (rows of other
    docs as they are); None when a row of a renamed doc has a pair the mapping lacks."""
    if not t.num_rows or not mapping:
        return t
    if not set(_ID_COLUMNS) <= set(t.column_names):
        return None
    t = t.combine_chunks()
    docs = sorted({a[0] for a in mapping})
    mask = pc.is_in(t["doc_id"], value_set=pa.array(docs, t.schema.field("doc_id").type))
    rows = np.flatnonzero(np.asarray(mask.combine_chunks() if isinstance(mask, pa.ChunkedArray)
                                     else mask, dtype=bool))
    if not len(rows):
        return t
    pairs = zip(t["doc_id"].take(rows).to_pylist(), t["article_id"].take(rows).to_pylist(),
                strict=True)
    try:
        new_ids = [mapping[pair] for pair in pairs]
    except KeyError:
        return None
    m = np.zeros(t.num_rows, dtype=bool)
    m[rows] = True
    m_arr = pa.array(m)
    for k, c in enumerate(_ID_COLUMNS):
        col = t[c].combine_chunks()
        t = t.set_column(t.schema.get_field_index(c), c, pc.replace_with_mask(
            col, m_arr, pa.array([x[k] for x in new_ids], col.type)))
    return t


def _memo_table(memo: MutableMapping[str, Any], key: str) -> pa.Table | None:
    """A label's table kept in the memo: stored whole (bytes), or as a recipe on one that is
    (``_renamed``); None when missing or unreadable."""
    entry = memo.get(key)
    if isinstance(entry, bytes):
        return read_ipc(entry)
    if not isinstance(entry, dict):
        return None
    base = memo.get(entry["base"])
    if not isinstance(base, bytes):
        return None
    t = _rename_rows(read_ipc(base), entry["map"])
    return None if t is None else _take_runs(t, entry["order"])


def _take_runs(t: pa.Table, order: np.ndarray, combine: bool = True) -> pa.Table:
    """``t.take(order)`` as one chunk, for an ``order`` that mostly keeps runs of consecutive
    rows (a few rows moved): the runs are sliced and copied whole (a take gathers every string
    of the big columns one by one: ~0.1 s for the measure label's 100 MB at 1,000 reports).
    ``combine=False``: the slices as they are (no copy; chunks as they fall)."""
    if not len(order):
        return t.slice(0, 0)
    cut = np.flatnonzero(np.diff(order) != 1) + 1
    if not len(cut) and order[0] == 0 and len(order) == t.num_rows:
        return t  # nothing moved
    if len(cut) > len(order) // 8:  # many runs: a take is as fast
        taken = t.take(pa.array(order))
        return taken.combine_chunks() if combine else taken
    begins = np.concatenate(([0], cut))
    ends = np.concatenate((cut, [len(order)]))
    runs = pa.concat_tables([t.slice(int(order[a]), int(b - a))
                             for a, b in zip(begins.tolist(), ends.tolist(), strict=True)])
    return runs.combine_chunks() if combine else runs


#: memo entry prefix of a label's last grouping (``_state``), referenced from its ``LAST`` entry
STATE = "problems-state-"
#: most changed files a label is updated for instead of rebuilt
MAX_CHANGED = 8
#: an updated table is kept in the chunks its runs of rows came in (copying ~100 MB into one was
#: a fifth of an update; the written file does not depend on chunks) until it has this many
MAX_CHUNKS = 4096
#: the columns of problems.parquet that are the items' own
_ITEM_OUT = ("label", "unit", "doc_id", "article_id", "text", "sentence", "page", "idx")


def _state(uniq: list[str], uwords: list[str], topics: list[str], themes: list[str],
           anchors: np.ndarray, ugroup: np.ndarray, block_of: np.ndarray, item_file: np.ndarray,
           inverse: np.ndarray, kcode: np.ndarray, keys: pa.Array, first: np.ndarray,
           tmin: np.ndarray, names: Mapping[int, str], gs: np.ndarray) -> dict[str, Any]:
    """What ``_updated`` needs of a label's grouping: per distinct text its first item's words,
    topic words, theme and anchor, its group, block and first item's file; per item (in file
    order) its text, group key and file; per group its least text, name (kept groups) and the
    kept groups in cluster-id order."""
    texts = pa.table({"text": pa.array(uniq, pa.string()), "words": pa.array(uwords, pa.string()),
                      "topic": pa.array(topics, pa.string()), "theme": pa.array(themes, pa.string())})
    n_groups = len(tmin)
    gname: list[str | None] = [None] * n_groups
    for g, name in names.items():
        gname[g] = name
    return {"texts": _table_bytes(texts), "anchor": np.asarray(anchors, dtype=np.uint64),
            "grp": np.asarray(ugroup, dtype=np.int64), "blk": np.asarray(block_of, dtype=np.int64),
            "repf": item_file[first].astype(np.int32), "u": np.asarray(inverse, dtype=np.int32),
            "k": np.asarray(kcode, dtype=np.int32), "f": item_file.astype(np.int32),
            "keys": keys.cast(pa.string()),
            "gmin": pa.array([uniq[t] if t < len(uniq) else None for t in tmin.tolist()], pa.string()),
            "gname": pa.array(gname, pa.string()), "kept": np.asarray(gs, dtype=np.int64)}


def _table_bytes(t: pa.Table) -> bytes:
    """A label's table (or grouping texts) as LZ4-compressed Arrow IPC (read back in the same
    chunks; ``outputs.write_table`` makes the file the same whatever they are)."""
    return ipc_bytes(t, "lz4")


def _np(a: pa.Array | pa.ChunkedArray, dtype: Any = None) -> np.ndarray:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    return np.asarray(a.to_numpy(zero_copy_only=False), dtype=dtype)


def _updated(label: str, parts: Sequence[Mapping[str, Any]], digests: Sequence[Mapping[str, Any]],
             memo: MutableMapping[str, Any], threshold: float, min_units: int
             ) -> tuple[pd.DataFrame, dict[str, Any], pa.Table] | None:
    """The label's table when a few files' items changed since the last table made: that table
    without the groups those files' items were or are in, those groups made again from the
    items (re-clustering only the blocks whose texts changed) and the cluster ids renumbered —
    what a rebuild gives, without re-assembling the label from every file's items. Also the new
    ``_state``, and the table as Arrow (what the memo keeps). None when this does not apply
    (then the label is rebuilt)."""
    pk = part_key(label)
    last = memo.get(LAST + label)
    if not isinstance(last, dict) or not last.get("state") or len(last["full"]) != len(digests):
        return None
    changed = [i for i, d in enumerate(digests) if d.get(pk, "-") != last["full"][i]]
    if not changed or len(changed) > MAX_CHANGED:
        return None
    st, old = memo.get(last["state"]), _memo_table(memo, last["key"])
    if not isinstance(st, dict) or st.get("opos") is None or old is None:
        return None
    st_opos = st["opos"] if last.get("order") is None else st["opos"][last["order"]]
    if not old.num_rows:
        return None
    texts0 = read_ipc(st["texts"])
    n0 = texts0.num_rows
    u, k, f = st["u"], st["k"], st["f"]
    n_files = len(digests)
    # the changed files' new items, and the items of the others, in file order
    loaded = [(i, parts[i][pk]) for i in changed]
    new_tabs = [t for _, t in loaded if t.num_rows]
    nt = (pa.concat_tables(new_tabs, promote_options="permissive").combine_chunks() if new_tabs
          else None)
    nf = (np.repeat(np.asarray([i for i, t in loaded if t.num_rows], dtype=np.int32),
                    [t.num_rows for t in new_tabs]) if new_tabs else np.zeros(0, np.int32))
    is_chg = np.zeros(n_files, dtype=bool)
    is_chg[changed] = True
    gone = is_chg[f]
    # texts and keys of the new items: codes in the last state, new ones appended
    keys0 = st["keys"]
    add_rows: list[int] = []  # rows of nt giving a new text's first item
    nu = np.zeros(0, dtype=np.int64)
    nk = np.zeros(0, dtype=np.int64)
    keys_added: list[str] = []
    if nt is not None:
        ntext = nt["text"].cast(pa.string())
        nu = _np(pc.index_in(ntext, value_set=texts0["text"]), float)
        miss = np.isnan(nu)
        nu = np.where(miss, -1, nu).astype(np.int64)
        if miss.any():
            mcodes, _ = _codes(ntext.filter(pa.array(miss)))
            _, mfirst = np.unique(mcodes, return_index=True)
            rows_miss = np.flatnonzero(miss)
            nu[rows_miss] = n0 + mcodes
            add_rows = rows_miss[mfirst].tolist()
        nkey = nt["key"].cast(pa.string())
        nk = _np(pc.index_in(nkey, value_set=keys0), float)
        kmiss = np.isnan(nk)
        nk = np.where(kmiss, -1, nk).astype(np.int64)
        if kmiss.any():
            kc, kv = _codes(nkey.filter(pa.array(kmiss)))
            nk[np.flatnonzero(kmiss)] = len(keys0) + kc
            keys_added = kv.to_pylist()
    n_texts = n0 + len(add_rows)
    # splice: the others' items keep their order, each changed file's new items in its place
    spans: list[tuple[int, int, np.ndarray | None]] = []  # old items [a, b), or new items
    lo = 0
    for i in changed:
        spans.append((lo, int(np.searchsorted(f, i, "left")), None))
        spans.append((0, 0, np.flatnonzero(nf == i)))
        lo = int(np.searchsorted(f, i, "right"))
    spans.append((lo, len(u), None))
    pieces_u, pieces_k, pieces_f, pieces_src = [], [], [], []
    for a, b, sel in spans:
        if sel is None:
            pieces_u.append(u[a:b])
            pieces_k.append(k[a:b])
            pieces_f.append(f[a:b])
            pieces_src.append(np.full(b - a, -1, dtype=np.int64))
        else:
            pieces_u.append(nu[sel])
            pieces_k.append(nk[sel])
            pieces_f.append(nf[sel])
            pieces_src.append(sel)
    u2 = np.concatenate(pieces_u).astype(np.int64)
    k2 = np.concatenate(pieces_k).astype(np.int64)
    f2 = np.concatenate(pieces_f).astype(np.int32)
    src = np.concatenate(pieces_src)  # row of nt, or -1
    n_items = len(u2)
    if not n_items:
        return None
    counts = np.bincount(u2, minlength=n_texts)
    first = np.full(n_texts, n_items, dtype=np.int64)
    np.minimum.at(first, u2, np.arange(n_items))
    live = counts > 0
    # touched texts: any item of a changed file, before or after
    touched_t = np.zeros(n_texts, dtype=bool)
    touched_t[u[gone]] = True
    touched_t[nu] = True
    old_rep_chg = np.zeros(n_texts, dtype=bool)
    old_rep_chg[:n0] = is_chg[st["repf"]]
    # texts whose first item is, or was, a changed file's: their first item's words read again
    new_rep = live & touched_t & ((src[np.minimum(first, n_items - 1)] >= 0) | old_rep_chg)
    starts = np.searchsorted(f2, np.arange(n_files), "left")
    rep_cols = ["text", "words", "topic", "theme", "anchor"]
    # per text its row in ``tx``: the last state's texts, then rows from the items
    row_of = np.arange(n_texts, dtype=np.int64)
    anchor = np.concatenate([st["anchor"], np.zeros(n_texts - n0, np.uint64)])
    content = np.zeros(n_texts, dtype=bool)  # texts whose presence or first item changed
    content[n0:] = True
    content[:n0] |= ~live[:n0]
    extra = pa.table({"text": pa.array([], pa.string()), "words": pa.array([], pa.string()),
                      "topic": pa.array([], pa.string()), "theme": pa.array([], pa.string())})
    rep_t = np.flatnonzero(new_rep)
    if len(rep_t):
        reps = _item_rows(first[rep_t], f2, src, starts, is_chg, nt, parts, pk, rep_cols)
        th = [("nan" if x is None else str(x)) for x in reps["theme"].to_pylist()]
        extra = pa.table({"text": reps["text"].cast(pa.string()),
                          "words": reps["words"].cast(pa.string()),
                          "topic": reps["topic"].cast(pa.string()),
                          "theme": pa.array(th, pa.string())})
        new_anchor = _np(reps["anchor"], np.uint64)
        old_t = rep_t[rep_t < n0]
        if len(old_t):  # a first item now in a changed file: did what blocks depend on change?
            j = np.flatnonzero(rep_t < n0)
            o = texts0.take(pa.array(old_t))
            e = extra.take(pa.array(j))
            diff = ~(_np(pc.equal(o["topic"], e["topic"]), bool)
                     & _np(pc.equal(o["theme"], e["theme"]), bool)
                     & (anchor[old_t] == new_anchor[j]))
            content[old_t[diff]] = True
        anchor[rep_t] = new_anchor
        row_of[rep_t] = n0 + np.arange(len(rep_t))
    tx = pa.concat_tables([texts0, extra])
    # themes as codes (a changed first item may change a text's theme: both are touched)
    tcodes, _ = _codes(tx["theme"])
    theme_of = tcodes[row_of]
    touched_themes = set(theme_of[content].tolist()) | set(tcodes[:n0][content[:n0]].tolist())
    grp0, blk0 = st["grp"], st["blk"]
    grp = np.concatenate([grp0, np.full(n_texts - n0, -1, np.int64)])
    blk = np.concatenate([blk0, np.full(n_texts - n0, -1, np.int64)])
    old_bsize = np.bincount(blk0)
    next_g, next_b = int(grp0.max()) + 1, int(blk0.max()) + 1
    dead_g: set[int] = set()
    theme_all = np.concatenate([tcodes[:n0], np.full(n_texts - n0, -1, np.int64)])
    # the blocks that may differ from last time (``_unique_groups``): all texts in one block
    # when they are few (then, or last time: every block is compared), else the blocks of the
    # themes whose texts changed
    candidates: list[np.ndarray] = []
    if int(live.sum()) <= BLOCK_SIZE:
        candidates.append(np.flatnonzero(live))
        dead_g.update(grp0[~live[:n0]].tolist())
    else:
        themes = range(int(tcodes.max()) + 1) if n0 <= BLOCK_SIZE else sorted(touched_themes)
        for th in themes:
            members = np.flatnonzero(live & (theme_of == th))
            dead_g.update(grp0[(theme_all[:n0] == th) & ~live[:n0]].tolist())
            if len(members):
                candidates += [members[b] for b in
                               anchor_blocks(anchor[members], [""] * len(members), BLOCK_SIZE)]
    for ids_b in candidates:
        ob = blk[ids_b]
        if (not content[ids_b].any() and ob[0] >= 0 and (ob == ob[0]).all()
                and old_bsize[ob[0]] == len(ids_b)):
            continue  # the same block as last time: its groups stand
        dead_g.update(grp[ids_b][grp[ids_b] >= 0].tolist())
        sub_t = tx.take(pa.array(row_of[ids_b]))
        bt = sub_t["text"].to_pylist()
        order = sorted(range(len(bt)), key=bt.__getitem__)
        tops = sub_t["topic"].to_pylist()
        sub = _block_groups([bt[i] for i in order], [tops[i] for i in order], threshold, memo)
        placed = ids_b[np.asarray(order, dtype=np.int64)]
        grp[placed] = sub + next_g
        next_g += int(sub.max()) + 1
        blk[placed] = next_b
        next_b += 1
    n_groups = next_g
    touched_g = np.zeros(n_groups, dtype=bool)
    touched_g[list(dead_g)] = True
    touched_g[grp[touched_t & live]] = True
    touched_g[grp0.max() + 1:] = True
    g_items = grp[u2]
    n_members = np.bincount(g_items, minlength=n_groups)
    nkeys = max(len(keys0) + len(keys_added), 1)
    pairs = _distinct(g_items * nkeys + k2)
    n_units = np.bincount(pairs // nkeys, minlength=n_groups)
    kept_group = n_units >= min_units
    if not kept_group.any():
        return None
    # least text and name of every group: the last state's (Arrow, by group), made again for the
    # touched groups (``patch``: group → its entry in the appended values)
    n_old_g = len(st["gmin"])
    tt = np.flatnonzero(live & touched_g[grp])
    tt_text = tx["text"].take(pa.array(row_of[tt])).to_pylist()
    least: dict[int, str] = {}
    for t, s_ in zip(grp[tt].tolist(), tt_text, strict=True):
        if t not in least or s_ < least[t]:
            least[t] = s_
    gmin_at = np.minimum(np.arange(n_groups), max(n_old_g - 1, 0))
    patched = list(least)
    gmin_at[patched] = n_old_g + np.arange(len(patched))
    gmin_all = pa.concat_arrays([st["gmin"], pa.array(list(least.values()), pa.string())])
    gs = np.flatnonzero(kept_group)
    order_g = np.asarray(pc.sort_indices(
        pa.table({"u": -n_units[gs], "m": -n_members[gs], "t": gmin_all.take(pa.array(gmin_at[gs]))}),
        sort_keys=[("u", "ascending"), ("m", "ascending"), ("t", "ascending")]))
    gs = gs[order_g]
    id_list = [f"{label}-{i + 1:03d}" for i in range(len(gs))]
    ids_at = np.zeros(n_groups, dtype=np.int64)  # group → its place in ``id_list``
    ids_at[gs] = np.arange(len(gs))
    cid_rank = np.zeros(n_groups, dtype=np.int64)
    cid_rank[gs] = np.argsort(np.argsort(np.array(id_list, dtype=str), kind="stable"), kind="stable")
    tk = tt[kept_group[grp[tt]]]
    new_names: dict[int, str] = {}
    if len(tk):
        sub_t = tx.take(pa.array(row_of[tk]))
        new_names = _names_of(grp[tk], sub_t["text"].to_pylist(), sub_t["words"].to_pylist(),
                              sub_t["topic"].to_pylist(), counts[tk], np.ones(len(tk), bool),
                              first[tk])
    name_at = np.minimum(np.arange(n_groups), max(n_old_g - 1, 0))
    dead_name = np.flatnonzero(touched_g)  # a touched group not kept has no name
    name_at[dead_name] = n_old_g
    name_at[list(new_names)] = n_old_g + 1 + np.arange(len(new_names))
    names_all = pa.concat_arrays([st["gname"], pa.array([None, *new_names.values()], pa.string())])
    # rows: the last table's rows of untouched groups; the touched kept groups' rows from the
    # last table too when it had them (``opos``: each row's item), else from the items
    old_items_all = old.select([c for c in COLUMNS if c in _ITEM_OUT])
    kept_old = st["kept"]
    old_ids = pa.array([f"{label}-{i + 1:03d}" for i in range(len(kept_old))], pa.string())
    og = kept_old[_np(pc.index_in(old["cluster_id"].cast(pa.string()), value_set=old_ids), np.int64)]
    keep_old = np.flatnonzero(~touched_g[og])
    newpos_of_old = np.full(len(u), -1, dtype=np.int64)
    off = 0
    for a, b, sel in spans:
        if sel is None:
            newpos_of_old[a:b] = off + np.arange(b - a)
            off += b - a
        else:
            off += len(sel)
    opos = newpos_of_old[st_opos]  # -1: a changed file's row
    row_at = np.full(n_items, -1, dtype=np.int64)
    row_at[opos[opos >= 0]] = np.flatnonzero(opos >= 0)
    pos = np.flatnonzero(kept_group[g_items] & touched_g[g_items])
    # mostly long runs: sliced, not gathered nor copied (the rows are copied once, below)
    pieces = [_take_runs(old_items_all, keep_old, combine=False)]
    p_all = [opos[keep_old]]
    if len(pos):
        r = row_at[pos]
        from_old, rest = pos[r >= 0], pos[r < 0]
        got = [old_items_all.take(pa.array(r[r >= 0]))]
        if len(rest):
            got.append(_item_rows(rest, f2, src, starts, is_chg, nt, parts, pk, old_items_all.column_names)
                       .cast(old_items_all.schema))
        new_rows = pa.concat_tables(got).combine_chunks()
        new_pos = np.concatenate([from_old, rest])
        g_new = g_items[new_pos]
        srt = pa.table({"c": cid_rank[g_new], "u": new_rows["unit"], "d": new_rows["doc_id"],
                        "i": new_rows["idx"], "t": new_rows["text"], "p": new_pos})
        o = np.asarray(pc.sort_indices(srt, sort_keys=[(c, "ascending") for c in "cudit"]
                                       + [("p", "ascending")]))
        pieces.append(new_rows.take(pa.array(o)))
        p_all.append(new_pos[o])
    allrows = pa.concat_tables(pieces)
    p_all_ = np.concatenate(p_all)
    g_all = g_items[p_all_]
    o = np.argsort(cid_rank[g_all], kind="stable")
    g = g_all[o]
    out_pos = p_all_[o]
    # the rows mostly keep the last table's order: copy runs of consecutive rows (a take
    # gathers every string of the big columns one by one)
    cut = np.flatnonzero(np.diff(o) != 1) + 1
    begins = np.concatenate(([0], cut)) if len(o) else np.zeros(0, dtype=np.int64)
    ends = np.concatenate((cut, [len(o)])) if len(o) else np.zeros(0, dtype=np.int64)
    ordered = pa.concat_tables([allrows.slice(int(o[a]), int(b - a))
                                for a, b in zip(begins.tolist(), ends.tolist(), strict=True)])
    cols = {c: ordered[c] for c in ordered.column_names}
    cols["n_units"] = pa.array(n_units[g])
    cols["n_members"] = pa.array(n_members[g])
    cols["cluster_id"] = pa.array(id_list, pa.string()).take(pa.array(ids_at[g]))
    cols["cluster_name"] = names_all.take(pa.array(name_at[g]))
    final = pa.Table.from_arrays([cols[c].cast(old.schema.field(c).type) for c in old.column_names],
                                 schema=old.schema)
    if max(c.num_chunks for c in final.columns) > MAX_CHUNKS:  # (each update slices it again)
        final = final.combine_chunks()
    out = final.to_pandas()
    # the new state: live texts and live groups only
    lt = np.flatnonzero(live)
    remap_t = np.full(n_texts, -1, dtype=np.int64)
    remap_t[lt] = np.arange(len(lt))
    lg = _distinct(grp[lt])
    remap_g = np.full(n_groups, -1, dtype=np.int64)
    remap_g[lg] = np.arange(len(lg))
    lb = _distinct(blk[lt])
    remap_b = np.full(next_b, -1, dtype=np.int64)
    remap_b[lb] = np.arange(len(lb))
    texts_new = _take_runs(tx, row_of[lt])
    state = {"texts": _table_bytes(texts_new), "anchor": anchor[lt], "grp": remap_g[grp[lt]],
             "blk": remap_b[blk[lt]], "repf": f2[first[lt]].astype(np.int32),
             "u": remap_t[u2].astype(np.int32), "k": k2.astype(np.int32), "f": f2,
             "keys": pa.concat_arrays([keys0, pa.array(keys_added, pa.string())]),
             "gmin": gmin_all.take(pa.array(gmin_at[lg])),
             "gname": names_all.take(pa.array(name_at[lg])),
             "kept": remap_g[gs], "opos": out_pos}
    return out, state, final


def _item_rows(pos: np.ndarray, f2: np.ndarray, src: np.ndarray, starts: np.ndarray,
               is_chg: np.ndarray, nt: pa.Table | None, parts: Sequence[Mapping[str, Any]],
               pk: str, cols: list[str]) -> pa.Table:
    """Columns of the items at ``pos`` (item order), in that order: a changed file's from its
    new items (``nt``, rows ``src``), another's from its part, loaded only for these rows."""
    got, where = [], []
    fp = f2[pos]
    for fi in np.unique(fp).tolist():
        sel = np.flatnonzero(fp == fi)
        p_f = pos[sel]
        if is_chg[fi]:
            assert nt is not None
            t = nt.select(cols).take(pa.array(src[p_f]))
        else:
            t = parts[fi][pk].select(cols).take(pa.array(p_f - starts[fi]))
        got.append(t)
        where.append(sel)
    t = pa.concat_tables(got, promote_options="permissive").combine_chunks()
    back = np.empty(len(pos), dtype=np.int64)
    back[np.concatenate(where)] = np.arange(len(pos))
    return t.take(pa.array(back))


def _frame_bytes(df: pd.DataFrame) -> bytes:
    """:func:`_table_bytes` of a frame."""
    return _table_bytes(pa.Table.from_pandas(df, preserve_index=False))


def _distinct(a: np.ndarray) -> np.ndarray:
    """``np.unique`` of an integer array by one sort (numpy's hash path is several times slower
    on these arrays)."""
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def _codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes of a string column (first-appearance order) and its distinct values."""
    enc = pc.dictionary_encode(col)  # one dictionary shared by all chunks
    if isinstance(enc, pa.ChunkedArray):
        if enc.num_chunks == 0:
            return np.zeros(0, dtype=np.int64), pa.array([], pa.string())
        idx = np.concatenate([np.asarray(c.indices, dtype=np.int64) for c in enc.chunks])
        return idx, enc.chunks[-1].dictionary  # the last holds every value
    return np.asarray(enc.indices, dtype=np.int64), enc.dictionary


def _combine_label(tables: list[pa.Table], label: str, threshold: float, min_units: int,
                   memo: MutableMapping[str, Any] | None, files: Sequence[int] | None = None,
                   state: dict[str, Any] | None = None) -> pd.DataFrame:
    """One label's rows of problems.parquet from the files' items of that label (``tables`` is
    emptied: the rows are released as soon as they are combined).

    Everything per item is integer arrays (codes of the texts and group keys); what needs Python
    (topic words, anchors, names) is done once per distinct text, whose items always share a
    group."""
    empty = pd.DataFrame(columns=COLUMNS)
    if not tables:
        return empty
    # Arrow tables concatenate without copying (a pandas concat copies every column); a column
    # one file has all-null is promoted to the others' type
    item_file = (np.repeat(np.asarray(files, dtype=np.int32), [t.num_rows for t in tables])
                 if files is not None else None)
    it = pa.concat_tables(tables, promote_options="permissive")
    tables.clear()  # the files' tables live on in ``it`` only: freed with it, before the output
    # then one chunk per column, column after column (each file's chunks freed as its column is
    # copied: the peak grows by one column, not the table): a take from 1,000 chunks copies
    # them all first, and the columns below are taken from up to three times (measured: 0.6 s
    # of takes for the measure label at 1,000 reports)
    for k, name in enumerate(it.column_names):
        it = it.set_column(k, name, it.column(k).combine_chunks())
    tcode, dictionary = _codes(it["text"])
    _, first = np.unique(tcode, return_index=True)  # first item of each distinct text
    perm = np.asarray(pc.array_sort_indices(dictionary), dtype=np.int64)  # code-point order
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    inverse = rank[tcode]  # item → its text's place among the sorted distinct texts
    first = first[perm]
    uniq: list[str] = dictionary.take(pa.array(perm)).to_pylist()
    taken = pa.array(first)
    # words, topic words and anchor of a text: its first item's (as cluster_texts takes them)
    uwords: list[str] = it["words"].take(taken).to_pylist()
    # topic words stay space-joined strings (what the block memo hashes): split only to cluster
    topics: list[str] = it["topic"].take(taken).to_pylist()
    anchors = np.asarray(it["anchor"].take(taken).combine_chunks(), dtype=np.uint64)
    # a missing theme keys its block as the old pandas path did (str of NaN)
    themes = ["nan" if t is None else str(t) for t in it["theme"].take(taken).to_pylist()]
    block_of = np.zeros(len(uniq), dtype=np.int64)
    ugroup = _unique_groups(uniq, topics, themes, threshold, BLOCK_SIZE, memo, anchors, block_of)
    group = ugroup[inverse]
    n_groups = int(ugroup.max()) + 1
    kcode, keys = _codes(it["key"])
    pairs = _distinct(group.astype(np.int64) * max(len(keys), 1) + kcode)
    n_units = np.bincount(pairs // max(len(keys), 1), minlength=n_groups)
    n_members = np.bincount(group, minlength=n_groups)
    kept_group = n_units >= min_units
    keep = kept_group[group]
    if not keep.any():
        return empty
    # biggest groups first, numbered per label; equal sizes by their first member's text
    tmin = np.full(n_groups, len(uniq), dtype=np.int64)
    np.minimum.at(tmin, ugroup, np.arange(len(uniq)))
    gs = np.flatnonzero(kept_group)
    gs = gs[np.lexsort((tmin[gs], -n_members[gs], -n_units[gs]))]
    ids = np.empty(n_groups, dtype=object)
    ids[gs] = [f"{label}-{i + 1:03d}" for i in range(len(gs))]
    ukeep = kept_group[ugroup]
    counts = np.bincount(inverse[keep], minlength=len(uniq))
    names = _names_of(ugroup, uniq, uwords, topics, counts, ukeep, first)
    if state is not None and item_file is not None:
        state.update(_state(uniq, uwords, topics, themes, anchors, ugroup, block_of, item_file,
                            inverse, kcode, keys, first, tmin, names, gs))
        state["opos"] = None  # each output row's item, set below
    # the rows in (cluster_id, unit, doc_id, idx, text) order; ties keep the item order
    cid_rank = np.zeros(n_groups, dtype=np.int64)
    cid_rank[gs] = np.argsort(np.argsort(ids[gs].astype(str), kind="stable"), kind="stable")
    rows = np.flatnonzero(keep)
    sub = it.select(["unit", "doc_id", "idx", "text"]).take(pa.array(rows))
    t = pa.table({"c": cid_rank[group[rows]], "u": sub["unit"], "d": sub["doc_id"],
                  "i": sub["idx"], "t": sub["text"], "p": np.arange(len(rows))})
    order = np.asarray(pc.sort_indices(t, sort_keys=[("c", "ascending"), ("u", "ascending"),
                                                     ("d", "ascending"), ("i", "ascending"),
                                                     ("t", "ascending"), ("p", "ascending")]))
    g = group[rows][order]
    rows_tbl = it.select([c for c in COLUMNS if c in it.column_names]).take(pa.array(rows[order]))
    if state:
        state["opos"] = rows[order].astype(np.int64)
    del it, sub, t  # peak memory: the items are not needed once their rows are taken
    out = rows_tbl.to_pandas()
    del rows_tbl
    out = out.assign(n_units=n_units[g], n_members=n_members[g],
                     cluster_id=pd.Series(ids[g].tolist(), dtype="str"),
                     cluster_name=pd.Series([names[x] for x in g.tolist()], dtype="str"))
    return out[COLUMNS]


def _names_of(ugroup: np.ndarray, uniq: list[str], uwords: list[str], topics: list[str],
              counts: np.ndarray, ukeep: np.ndarray, first: np.ndarray,
              n_terms: int = 3) -> dict[int, str]:
    """``cluster_name`` of every kept group from its distinct texts (``counts``: items per text;
    ``uwords``/``topics``: space-joined): each text's distinct name words (its topic words, else
    its words) as integer codes by Arrow, (group, word) counts weighted by the text's items, one
    sort (count, then length, then the word itself), the first ``n_terms`` of each group; a group
    without words: its first text."""
    us = np.flatnonzero(ukeep & (counts > 0))
    terms = pc.split_pattern(pa.array([topics[u] or uwords[u] for u in us.tolist()],
                                      pa.large_string()), " ")
    lens = np.diff(np.asarray(terms.offsets, dtype=np.int64))
    flat = terms.flatten()
    real = np.asarray(pc.not_equal(flat, ""), dtype=bool)  # "" splits into one empty word
    owner = np.repeat(np.arange(len(us), dtype=np.int64), lens)[real]
    names: dict[int, str] = {}
    if len(owner):
        enc = pc.dictionary_encode(flat.filter(pa.array(real)))
        vocab = np.array(enc.dictionary.to_pylist(), dtype=object)
        nv = len(vocab)
        pairs = _distinct(owner * nv + np.asarray(enc.indices, dtype=np.int64))  # a set per text
        owner, w = pairs // nv, pairs % nv
        g = ugroup[us][owner].astype(np.int64)
        gw, inv = np.unique(g * nv + w, return_inverse=True)
        n = np.bincount(np.ravel(inv), weights=counts[us][owner]).astype(np.int64)
        gg, ww = gw // nv, gw % nv
        word_rank = np.argsort(np.argsort(vocab.astype(str), kind="stable"), kind="stable")
        lengths = np.fromiter(map(len, vocab), dtype=np.int64, count=nv)
        order = np.lexsort((word_rank[ww], -lengths[ww], -n, gg))
        gg, ww = gg[order], ww[order]
        rank = np.arange(len(gg)) - np.searchsorted(gg, gg, side="left")
        top = rank < n_terms
        for grp, word in zip(gg[top].tolist(), vocab[ww[top]].tolist(), strict=True):
            names[grp] = f"{names[grp]}、{word}" if grp in names else word
    # a group without words: the text of its first member (in item order)
    for u in sorted(us.tolist(), key=lambda u: first[u]):
        names.setdefault(int(ugroup[u]), uniq[u][:12])
    return names


def recurring_problems(sentences: pd.DataFrame, threshold: float = DISTANCE_THRESHOLD,
                       min_units: int = 2, labels: tuple[str, ...] = PROBLEM_LABELS,
                       items: pd.DataFrame | None = None,
                       memo: MutableMapping[str, Any] | None = None) -> pd.DataFrame:
    """problems.parquet: members of groups spanning at least ``min_units`` units, per label.

    ``items``: ``problem_items(sentences, labels)`` when already built.
    """
    if items is None:
        items = problem_items(sentences, labels)
    part = _part_frame(items)
    one = {part_key(lab): _to_arrow(part[part["label"] == lab] if len(part) else part)
           for lab in labels}
    return combine_problems([one], threshold, min_units, labels, memo)


def pairwise_scores(pred: list[int] | np.ndarray, gold: list[int] | np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping against a hand grouping (same items, same order)."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    same_p = pred[:, None] == pred[None, :]
    same_g = gold[:, None] == gold[None, :]
    iu = np.triu_indices(len(pred), k=1)
    p, g = same_p[iu], same_g[iu]
    tp = int((p & g).sum())
    precision = tp / int(p.sum()) if p.sum() else 1.0
    recall = tp / int(g.sum()) if g.sum() else 1.0
    return precision, recall
