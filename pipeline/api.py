"""The analysts' Python API over a run's outputs.

>>> from pipeline import load_run
>>> run = load_run()                       # outputs/latest, or $HUIBIAN_RUN_DIR
>>> run.sentences.head()                   # every table of the run as a pandas DataFrame
>>> run.units_reporting("基层组织")         # which units report it, how often, on which pages
>>> run.unit_profile("山东省")              # strengths / gaps / causes / measures with quotes and pages
>>> run.filter(unit=["山东省"], label="cause")

The tables are read with :func:`pipeline.run.load_frames` (what ``huibian eval`` reads), profiles
come from the digest's ``unit_profiles`` and season comparison from ``pipeline.analyze.compare``, so
the notebook, the CLI and the digest report the same numbers. A table a run does not hold (an older
run, or a stage that produced nothing) is an empty frame with the contract's columns.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .analyze.matrix import content_sentences
from .run import load_frames
from .tables import ARTICLE_COLUMNS, DOCUMENT_COLUMNS, SENTENCE_COLUMNS, TOC_COLUMNS

__all__ = ["Run", "UnitProfile", "RunNotFoundError", "load_run", "compare_runs", "export", "TABLES", "ROLES",
           "UNKNOWN_UNIT", "DEFAULT_RUN_DIR"]

#: where `huibian run` without --out writes; ``HUIBIAN_RUN_DIR`` overrides it
DEFAULT_RUN_DIR = "outputs/latest"
#: label for sentences whose unit was not recognised (the matrix and the digest use the same)
UNKNOWN_UNIT = "(未识别)"
ROLES: tuple[str, ...] = ("strength", "gap", "cause", "measure")

_STR, _INT, _FLOAT, _NINT = "str", "int64", "float64", "Int64"


def _schema(columns: Sequence[str], **dtypes: str) -> dict[str, str]:
    return {c: dtypes.get(c, _STR) for c in columns}


#: every table a run may hold, with the columns (and dtypes) an empty one gets; see CONTRACT.md
TABLES: dict[str, dict[str, str]] = {
    "documents": _schema(DOCUMENT_COLUMNS, n_chars=_INT, n_articles=_INT, n_sentences=_INT),
    "articles": _schema(ARTICLE_COLUMNS, page=_NINT, n_sentences=_INT),
    "toc": _schema(TOC_COLUMNS, page=_NINT),
    "sentences": _schema(SENTENCE_COLUMNS, idx=_INT, confidence=_FLOAT, page=_NINT, phys_page=_NINT,
                         para=_INT, start=_INT, end=_INT),
    "matrix": _schema(["unit", "theme", "label", "n", "share"], n=_INT, share=_FLOAT),
    "keywords": _schema(["unit", "word", "score"], score=_FLOAT),
    "problems": _schema(["cluster_id", "cluster_name", "label", "unit", "doc_id", "article_id", "text",
                         "page"], page=_NINT),
    "copies": _schema(["doc_id_a", "doc_id_b", "article_id_a", "article_id_b", "text", "share_a",
                       "share_b"], share_a=_FLOAT, share_b=_FLOAT),
    "figures": _schema(["unit", "doc_id", "subject", "value", "measure_unit", "is_target", "text", "page"],
                       value=_FLOAT, is_target="bool", page=_NINT),
    "compare": _schema(["unit", "status", "cluster_name", "text_old", "text_new", "similarity"],
                       similarity=_FLOAT),
}


class RunNotFoundError(FileNotFoundError):
    """The folder is not a run's output folder (one line that says what to do)."""


def empty_table(name: str) -> pd.DataFrame:
    """An empty frame with the contract columns of table ``name``."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TABLES[name].items()})


def _conform(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Add contract columns an older run lacks (as missing values); keep every column it has."""
    missing = [c for c in TABLES.get(name, {}) if c not in df.columns]
    if not missing:
        return df
    return df.assign(**{c: pd.Series(pd.NA, index=df.index, dtype=TABLES[name][c]
                                     if TABLES[name][c] != "bool" else "boolean") for c in missing})


def _resolve_dir(path: str | os.PathLike[str] | None) -> Path:
    """The run folder: given, else $HUIBIAN_RUN_DIR, else outputs/latest.

    A relative path not found from the current folder is looked up from its parents, so a notebook
    opened in ``notebooks/`` finds the repository's ``outputs/latest``.
    """
    given = Path(path if path is not None else os.environ.get("HUIBIAN_RUN_DIR") or DEFAULT_RUN_DIR)
    given = given.expanduser()
    if given.is_absolute() or given.exists():
        return given
    for parent in Path.cwd().parents:
        if (parent / given).exists():
            return parent / given
    return given


@dataclass(repr=False)
class UnitProfile:
    """What one unit reported: counts per role and the most confident quotes with their pages.

    ``quotes`` has one row per quote (columns ``role``, ``text``, ``page``, ``section``,
    ``confidence``, ``doc_id``, ``article_id``, ``file``); ``counts`` are all of the unit's report
    sentences per role (the same numbers as the matrix).
    """

    unit: str
    n_sentences: int
    counts: dict[str, int]
    quotes: pd.DataFrame
    keywords: list[str] = field(default_factory=list)
    articles: pd.DataFrame = field(default_factory=pd.DataFrame)
    figures: pd.DataFrame = field(default_factory=pd.DataFrame)
    problems: pd.DataFrame = field(default_factory=pd.DataFrame)

    def role(self, role: str) -> pd.DataFrame:
        """The quotes of one role (``strength``, ``gap``, ``cause`` or ``measure``)."""
        return self.quotes[self.quotes["role"] == role].reset_index(drop=True)

    @property
    def strengths(self) -> pd.DataFrame:
        return self.role("strength")

    @property
    def gaps(self) -> pd.DataFrame:
        return self.role("gap")

    @property
    def causes(self) -> pd.DataFrame:
        return self.role("cause")

    @property
    def measures(self) -> pd.DataFrame:
        return self.role("measure")

    def __repr__(self) -> str:
        counts = ", ".join(f"{r}={self.counts.get(r, 0)}" for r in ROLES)
        return f"<UnitProfile {self.unit}: {self.n_sentences} sentences; {counts}>"

    def __str__(self) -> str:
        names = _role_names()
        lines = [f"{self.unit}: {self.n_sentences} report sentences"]
        if self.keywords:
            lines.append("keywords: " + "、".join(self.keywords[:10]))
        for role in ROLES:
            lines.append(f"\n{names.get(role, role)} ({role}): {self.counts.get(role, 0)}")
            for q in self.role(role).itertuples():
                page = "" if pd.isna(q.page) else f" [p.{q.page}]"
                lines.append(f"  - {q.text}{page}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter shows a profile as headed quote lists (escaped: report text is data, not HTML)."""
        from html import escape

        names = _role_names()
        parts = [f"<h3>{escape(self.unit)} — {self.n_sentences} 句</h3>"]
        if self.keywords:
            parts.append(f"<p><b>关键词</b>：{escape('、'.join(self.keywords[:15]))}</p>")
        for role in ROLES:
            parts.append(f"<h4>{escape(names.get(role, role))}（{self.counts.get(role, 0)}）</h4><ul>")
            for q in self.role(role).itertuples():
                page = "" if pd.isna(q.page) else f" <small>第{int(q.page)}页</small>"
                parts.append(f"<li>{escape(str(q.text))}{page}</li>")
            parts.append("</ul>")
        return "".join(parts)


def _role_names() -> dict[str, str]:
    try:
        from .digest.common import ROLE_NAMES
    except ImportError:  # the digest package is being reorganised: fall back to its root
        from .digest import ROLE_NAMES
    return dict(ROLE_NAMES)


def _digest_unit_profiles(frames: dict[str, pd.DataFrame], per_role: int) -> list[dict[str, Any]]:
    """The digest's per-unit profiles (the same function the digest renders from)."""
    try:
        from .digest.common import unit_profiles
    except ImportError:
        from .digest import unit_profiles
    first = next(iter(inspect.signature(unit_profiles).parameters))
    arg = frames if first == "frames" else frames["sentences"]  # older digest took the sentences
    return unit_profiles(arg, per_role=per_role)


class Run:
    """One run's output folder, its tables as DataFrames and helpers for analysts' questions.

    Tables (attributes): ``documents``, ``articles``, ``toc``, ``sentences``, ``matrix``,
    ``keywords``, ``problems``, ``copies``, ``figures``, ``compare`` — exactly what the files hold;
    a table the run lacks is an empty frame with the contract columns. ``manifest`` is
    ``manifest.json`` as a dict, ``path`` the folder.
    """

    def __init__(self, path: Path, frames: dict[str, pd.DataFrame], manifest: dict[str, Any] | None = None):
        self.path = Path(path)
        self.manifest: dict[str, Any] = manifest or {}
        self._frames = {name: _conform(name, df) for name, df in frames.items()}

    # ---- tables -------------------------------------------------------------------------------

    def table(self, name: str) -> pd.DataFrame:
        """A table by name (also extra tables a run writes, e.g. ``review``)."""
        if name in self._frames:
            return self._frames[name]
        if name in TABLES:
            return empty_table(name)
        raise KeyError(f"no table {name!r} in {self.path}; tables: {', '.join(self.tables)}")

    @property
    def tables(self) -> list[str]:
        """Names of the tables present in the run folder."""
        return list(self._frames)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table (the contract's ones always present, possibly empty), as the digest gets them."""
        return {**{n: self.table(n) for n in TABLES}, **self._frames}

    documents = property(lambda self: self.table("documents"), doc="documents.csv: one row per input file")
    articles = property(lambda self: self.table("articles"), doc="articles.parquet: one row per article")
    toc = property(lambda self: self.table("toc"), doc="toc.parquet: one row per table-of-contents entry")
    sentences = property(lambda self: self.table("sentences"), doc="sentences.parquet: one row per sentence")
    matrix = property(lambda self: self.table("matrix"), doc="matrix.parquet: unit × theme × role counts")
    keywords = property(lambda self: self.table("keywords"), doc="keywords.parquet: distinctive words per unit")
    problems = property(lambda self: self.table("problems"), doc="problems.parquet: recurring-problem groups")
    copies = property(lambda self: self.table("copies"), doc="copies.parquet: passages shared by two documents")
    figures = property(lambda self: self.table("figures"), doc="figures.parquet: reported quantities")
    compare = property(lambda self: self.table("compare"), doc="compare.parquet: from `huibian compare`")

    # ---- units and sentences ------------------------------------------------------------------

    def report_sentences(self) -> pd.DataFrame:
        """Sentences that are report text (no furniture, TOC lines, table rows): what the matrix counts."""
        s = self.sentences
        if s["kind"].isna().all():  # a run from before sentences had a kind: all of it is report text
            return s
        return content_sentences(s)

    @property
    def units(self) -> list[str]:
        """The units that reported (``(未识别)`` for text whose unit was not recognised)."""
        units = self.report_sentences()["unit"].fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT)
        return sorted(set(units))

    def resolve_unit(self, unit: str) -> str:
        """The unit's name as the run spells it: exact, else the only unit containing ``unit``.

        Raises ``KeyError`` naming the closest units when there is no single match.
        """
        units = self.units
        if unit in units:
            return unit
        partial = [u for u in units if unit and unit in u]
        if len(partial) == 1:
            return partial[0]
        from rapidfuzz import process

        close = partial or [m[0] for m in process.extract(unit, units, limit=3)]
        raise KeyError(f"no unit {unit!r} in {self.path}; did you mean: {', '.join(close) or '-'}?")

    def filter(self, *, unit: str | Iterable[str] | None = None, label: str | Iterable[str] | None = None,
               theme: str | Iterable[str] | None = None, contains: str | Iterable[str] | None = None,
               report_only: bool = True) -> pd.DataFrame:
        """Sentences by unit, role label, theme and words (any of several words), with the file name.

        ``report_only`` keeps report text only (what the matrix counts); pass ``False`` to see
        furniture and table rows too. Unit names may be given as :meth:`resolve_unit` accepts them.
        """
        s = self.report_sentences() if report_only else self.sentences
        if unit is not None:
            wanted = {self.resolve_unit(u) for u in _as_list(unit)}
            s = s[s["unit"].fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT).isin(wanted)]
        if label is not None:
            s = s[s["label"].isin(_as_list(label))]
        if theme is not None:
            s = s[s["theme"].isin(_as_list(theme))]
        if contains is not None:
            words = _as_list(contains)
            hit = pd.Series(False, index=s.index)
            for w in words:
                hit |= s["text"].str.contains(w, regex=False, na=False)
            s = s[hit]
        return self._with_file(s.reset_index(drop=True))

    def _with_file(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add ``file``: the input file's short name, for reading quotes back in their source."""
        if "doc_id" not in df.columns or df.empty:
            return df.assign(file=pd.Series(dtype=_STR, index=df.index))
        docs = self.documents
        names = dict(zip(docs["doc_id"], docs["source"].astype(str).str.replace("\\", "/")
                         .str.rsplit("/", n=1).str[-1], strict=True))
        return df.assign(file=df["doc_id"].map(names))

    # ---- matrix -------------------------------------------------------------------------------

    def matrix_table(self, value: str = "n", roles: Sequence[str] = ROLES, by_theme: bool = True,
                     role_names: bool = False) -> pd.DataFrame:
        """The unit × theme × role matrix as a wide table for a heat map.

        Rows are units; columns are (theme, role) pairs when ``by_theme`` else roles; ``value`` is
        ``n`` (sentences) or ``share`` (of the unit's report sentences). Roles outside ``roles``
        (by default ``other``) are left out; ``role_names`` shows roles by their Chinese names
        (成绩与做法, 问题与差距, …) as the digest does.
        """
        m = self.matrix
        m = m[m["label"].isin(roles)]
        cols = ["theme", "label"] if by_theme else ["label"]
        if m.empty:
            return pd.DataFrame(index=pd.Index([], name="unit"))
        t = m.pivot_table(index="unit", columns=cols, values=value, aggfunc="sum", fill_value=0)
        if not by_theme:
            t = t.reindex(columns=[r for r in roles if r in t.columns])
        if role_names:
            names = _role_names()
            t = t.rename(columns=names, level="label") if by_theme else t.rename(columns=names)
        return t

    # ---- recurring problems -------------------------------------------------------------------

    def problem_groups(self, labels: str | Iterable[str] | None = None) -> pd.DataFrame:
        """One row per recurring-problem group: its name, role label, how many sentences and units,
        which units; biggest spread first. ``labels`` keeps groups of those roles (e.g. ``"gap"``:
        problems only, ``"cause"``: shared causes)."""
        p = self.problems
        cols = ["cluster_id", "cluster_name", "label", "n_sentences", "n_units", "units"]
        if labels is not None:
            p = p[p["label"].isin(_as_list(labels))]
        if p.empty:
            return pd.DataFrame(columns=cols)
        units = p["unit"].fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT)
        g = p.assign(unit=units, label=p["label"].fillna("")).groupby(["cluster_id", "cluster_name", "label"],
                                                                      sort=False, dropna=False)
        out = g.agg(n_sentences=("text", "size"), n_units=("unit", "nunique"),
                    units=("unit", lambda u: "、".join(sorted(set(u))))).reset_index()
        return out.sort_values(["n_units", "n_sentences", "cluster_id"],
                               ascending=[False, False, True]).reset_index(drop=True)

    def sentences_about(self, query: str | int | Iterable[str], labels: str | Iterable[str] = ("gap",)) -> pd.DataFrame:
        """The sentences behind :meth:`units_reporting` (problem-group members or keyword hits)."""
        group = self._problem_group(query)
        if group is not None:
            return self._with_file(group.reset_index(drop=True))
        s = self.filter(label=labels, contains=query)  # type: ignore[arg-type]
        return s.sort_values(["unit", "doc_id", "idx"]).reset_index(drop=True)

    def _problem_group(self, query: object) -> pd.DataFrame | None:
        """Members of the problem group whose id or name is ``query``, or None if it names none."""
        p = self.problems
        if p.empty or not isinstance(query, str | int):
            return None
        ids = p["cluster_id"].astype(str)
        hit = p[(ids == str(query)) | (p["cluster_name"] == str(query))]
        return hit if len(hit) else None

    def units_reporting(self, query: str | int | Iterable[str], labels: str | Iterable[str] = ("gap",)) -> pd.DataFrame:
        """Which units report a problem: one row per unit with counts, pages and an example.

        ``query`` is a problem group's ``cluster_id`` or ``cluster_name`` (from ``problems``), or
        else a word (or several: any of them) searched in the units' sentences of ``labels``
        (problems by default; e.g. ``labels="cause"`` for the causes they give). Columns: ``unit``,
        ``n_sentences``, ``n_documents``, ``pages``, ``example``.
        """
        s = self.sentences_about(query, labels)
        cols = ["unit", "n_sentences", "n_documents", "pages", "example"]
        if s.empty:
            return pd.DataFrame(columns=cols)
        s = s.assign(unit=s["unit"].fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT))
        rows = []
        for unit, g in s.groupby("unit", sort=False):
            pages = sorted({int(p) for p in g["page"].dropna()})
            best = g.sort_values("confidence", ascending=False) if "confidence" in g.columns else g
            rows.append({"unit": unit, "n_sentences": len(g), "n_documents": g["doc_id"].nunique(),
                         "pages": pages, "example": str(best["text"].iloc[0])})
        return (pd.DataFrame(rows, columns=cols).sort_values(["n_sentences", "unit"], ascending=[False, True])
                .reset_index(drop=True))

    # ---- one unit -----------------------------------------------------------------------------

    def unit_profile(self, unit: str, per_role: int = 5) -> UnitProfile:
        """What ``unit`` reported: counts per role and its ``per_role`` most confident quotes of each,
        with pages — computed by the digest's ``unit_profiles`` — plus its articles, keywords,
        figures and the problem groups it shares."""
        name = self.resolve_unit(unit)
        raw = self.sentences["unit"].fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT) == name
        frames = {**self.frames, "sentences": self.sentences[raw]}
        kw = self.keywords
        frames["keywords"] = kw[kw["unit"].fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT) == name]
        profiles = _digest_unit_profiles(frames, per_role)
        prof = next(p for p in profiles if p["unit"] == name)
        quote_cols = ["role", "text", "page", "section", "confidence", "doc_id", "article_id", "idx"]
        quotes = [{"role": role, **q} for role in ROLES for q in prof["roles"][role]["quotes"]]
        quotes_df = pd.DataFrame(quotes, columns=[*quote_cols])
        if not quotes_df.empty:
            quotes_df["page"] = quotes_df["page"].astype("Int64")
        counts = {role: int(prof["roles"][role]["n"]) for role in ROLES}
        of_unit = lambda df: df[df["unit"].fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT) == name]  # noqa: E731
        problems = of_unit(self.problems)
        shared = self.problem_groups()
        shared = shared[shared["cluster_id"].isin(problems["cluster_id"])] if len(problems) else shared.head(0)
        return UnitProfile(
            unit=name, n_sentences=int(prof["n"]), counts=counts, quotes=self._with_file(quotes_df),
            keywords=list(prof.get("keywords") or []),
            articles=of_unit(self.articles).reset_index(drop=True),
            figures=of_unit(self.figures).reset_index(drop=True),
            problems=shared.reset_index(drop=True))

    # ---- seasons ------------------------------------------------------------------------------

    def compare_with(self, old: Run | str | os.PathLike[str], labels: tuple[str, ...] = ("gap",)) -> pd.DataFrame:
        """Per unit, problems new / persisting / resolved since the ``old`` run: ``huibian compare``'s
        table, computed by the same code (``pipeline.analyze.compare``); this run is the new one."""
        other = old if isinstance(old, Run) else load_run(old)
        return compare_runs(other, self, labels=labels)

    # ---- export -------------------------------------------------------------------------------

    def export(self, path: str | os.PathLike[str], tables: Iterable[str] | None = None) -> list[Path]:
        """Write tables (default: all present) to ``.xlsx`` (a sheet each) or a folder of CSVs."""
        names = list(tables) if tables is not None else self.tables
        return export({n: self.table(n) for n in names}, path)

    def __repr__(self) -> str:
        d = self.documents
        ok = int((d["status"] == "ok").sum()) if "status" in d.columns else len(d)
        return (f"<Run {str(self.path)!r}: {len(d)} documents ({ok} ok), {len(self.articles)} articles, "
                f"{len(self.sentences)} sentences, {len(self.units)} units; tables: {', '.join(self.tables)}>")


def _as_list(value: str | int | Iterable[str]) -> list[str]:
    if isinstance(value, str | int):
        return [str(value)]
    return [str(v) for v in value]


def load_run(dir: str | os.PathLike[str] | None = None) -> Run:  # noqa: A002 - the brief's name
    """Open a run's output folder (default ``$HUIBIAN_RUN_DIR`` or ``outputs/latest``).

    Raises :class:`RunNotFoundError` when the folder holds no run (run ``huibian run`` first).
    """
    path = _resolve_dir(dir)
    if not path.is_dir():
        raise RunNotFoundError(f"no run folder at {path}: run `huibian run` first (or pass the folder "
                               "`huibian run --out` wrote to)")
    if not (path / "sentences.parquet").exists():
        raise RunNotFoundError(f"{path} holds no sentences.parquet, so it is not a finished run: "
                               "run `huibian run` first")
    frames = load_frames(path)
    manifest: dict[str, Any] = {}
    if (path / "manifest.json").exists():
        import json

        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a damaged manifest must not hide the tables
            manifest = {}
    return Run(path, frames, manifest)


def compare_runs(old: Run, new: Run, labels: tuple[str, ...] = ("gap",)) -> pd.DataFrame:
    """``huibian compare OLD NEW``'s table for two loaded runs (``pipeline.analyze.compare``):
    per unit, problems ``new`` / ``persisting`` / ``resolved`` (no longer reported)."""
    try:
        from .analyze.compare import compare_seasons
    except ImportError as e:
        raise NotImplementedError(f"season compare needs pipeline.analyze.compare ({e})") from None
    return compare_seasons(old.sentences, new.sentences, labels=labels)


def export(tables: pd.DataFrame | dict[str, pd.DataFrame], path: str | os.PathLike[str]) -> list[Path]:
    """Write a frame or named frames: ``.xlsx`` (one sheet each), ``.csv`` (one frame; UTF-8 with a
    BOM so Excel shows Chinese), ``.parquet`` (one frame), or a folder (one CSV per frame).

    Returns the files written. XLSX sheets are written like the digest's ``tables.xlsx``: text
    that XML forbids (control characters pasted from PDFs) is dropped rather than failing.
    """
    out = Path(path)
    frames = {"data": tables} if isinstance(tables, pd.DataFrame) else dict(tables)
    suffix = out.suffix.lower()
    if suffix in (".csv", ".parquet") and len(frames) != 1:
        raise ValueError(f"{out.name}: a {suffix} file holds one table; give a folder or .xlsx for {len(frames)}")
    if suffix == ".xlsx":
        # the digest's tables.xlsx writer: frozen header, autofilter, widths, cells Excel accepts
        from openpyxl import Workbook

        from .digest.xlsx import write_sheet

        out.parent.mkdir(parents=True, exist_ok=True)
        wb = Workbook(write_only=True)
        used: set[str] = set()
        for name, df in frames.items():
            write_sheet(wb, _sheet_name(name, used), _lists_as_text(df), [])
        wb.save(str(out))
        return [out]
    if suffix == ".csv":
        out.parent.mkdir(parents=True, exist_ok=True)
        next(iter(frames.values())).to_csv(out, index=False, encoding="utf-8-sig")
        return [out]
    if suffix == ".parquet":
        out.parent.mkdir(parents=True, exist_ok=True)
        next(iter(frames.values())).to_parquet(out, index=False)
        return [out]
    if suffix:
        raise ValueError(f"cannot export to {out.name}: use .xlsx, .csv, .parquet or a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in frames.items():
        df.to_csv(out / f"{name}.csv", index=False, encoding="utf-8-sig")
        written.append(out / f"{name}.csv")
    return written


def _sheet_name(name: str, used: set[str]) -> str:
    """Excel sheet names: at most 31 characters, no []:*?/\\, unique."""
    base = "".join("_" if ch in "[]:*?/\\" else ch for ch in str(name))[:31] or "sheet"
    sheet, i = base, 1
    while sheet in used:
        i += 1
        sheet = f"{base[:28]}_{i}"
    used.add(sheet)
    return sheet


def _lists_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """List cells (e.g. ``pages`` of :meth:`Run.units_reporting`) as "3、5、8" for a spreadsheet."""
    cols = [c for c in df.columns if df[c].dtype == object
            and df[c].map(lambda v: isinstance(v, list | tuple)).any()]
    if not cols:
        return df
    return df.assign(**{c: df[c].map(lambda v: "、".join(map(str, v)) if isinstance(v, list | tuple) else v)
                        for c in cols})
