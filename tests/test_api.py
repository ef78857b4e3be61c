"""Issue 9: the analysts' API returns what a run's files hold, and answers analysts' questions."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE

from pipeline import load_run
from pipeline.api import ROLES, TABLES, UNKNOWN_UNIT, Run, RunNotFoundError, export

REPORT_KINDS = ("body", "heading")
SAMPLE_GOV = SAMPLE / "gov2026"


@pytest.fixture(scope="module")
def run(sample_run: Path) -> Run:
    return load_run(sample_run)


def _unit(values: pd.Series) -> pd.Series:
    return values.fillna("").map(lambda u: u.strip() or UNKNOWN_UNIT)


def test_every_table_is_what_its_file_holds(sample_run: Path, run: Run) -> None:
    files = sorted(sample_run.glob("*.parquet"))
    assert {"sentences", "matrix", "articles"} <= {p.stem for p in files}
    for path in files:
        pd.testing.assert_frame_equal(run.table(path.stem), pd.read_parquet(path), check_like=True)
    docs = pd.read_csv(sample_run / "documents.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(run.documents, docs)
    assert run.manifest["sentences"] == len(run.sentences)
    # every contract table is an attribute with the contract's columns, present in the run or not
    for name, columns in TABLES.items():
        assert set(columns) <= set(getattr(run, name).columns), name


def test_missing_tables_are_empty_frames_with_contract_columns(sample_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old_run"
    old.mkdir()
    for name in ("documents.csv", "sentences.parquet", "articles.parquet"):
        shutil.copy(sample_run / name, old / name)
    r = load_run(old)
    for name in ("matrix", "keywords", "problems", "copies", "figures", "compare", "toc"):
        df = getattr(r, name)
        assert df.empty and list(df.columns) == list(TABLES[name]), name
    assert r.problem_groups().empty
    assert r.units_reporting("不存在的问题编号").empty
    assert r.matrix_table().empty
    # helpers that need only the sentences still work
    assert r.unit_profile("山东").n_sentences > 0


def test_unit_profile_counts_are_the_matrix_numbers(sample_run: Path, run: Run) -> None:
    matrix = pd.read_parquet(sample_run / "matrix.parquet")
    sentences = pd.read_parquet(sample_run / "sentences.parquet")
    named = [u for u in run.units if u != UNKNOWN_UNIT]
    assert {"山东省", "福建省", "青海省"} <= set(named)
    for unit in run.units:
        prof = run.unit_profile(unit, per_role=3)
        m = matrix[matrix["unit"] == unit]
        for role in ROLES:
            assert prof.counts[role] == int(m.loc[m["label"] == role, "n"].sum()), (unit, role)
            quotes = prof.role(role)
            assert len(quotes) == min(3, prof.counts[role])
        assert prof.n_sentences == int(m["n"].sum())
        # every quote is one of that unit's sentences of that role, with its page as stored
        own = sentences[_unit(sentences["unit"]) == unit].set_index(["doc_id", "idx"])
        for q in prof.quotes.itertuples():
            row = own.loc[(q.doc_id, q.idx)]
            assert row["text"] == q.text and row["label"] == q.role
            assert (pd.isna(row["page"]) and pd.isna(q.page)) or row["page"] == q.page
    shandong = run.unit_profile("山东")  # part of a name that matches one unit
    assert shandong.unit == "山东省"
    assert "山东省" in shandong._repr_html_() and "问题与差距" in shandong._repr_html_()
    assert shandong.articles["title"].str.contains("山东省政府工作报告").any()


def test_units_reporting_a_word_counts_the_files_sentences(sample_run: Path, run: Run) -> None:
    sentences = pd.read_parquet(sample_run / "sentences.parquet")
    report = sentences[sentences["kind"].isin(REPORT_KINDS)]
    for words, label in ((["风险"], "gap"), (["支部", "组织生活"], "cause"), (["就业"], "measure")):
        hit = report[(report["label"] == label)
                     & report["text"].str.contains("|".join(words), regex=True)]
        expected = _unit(hit["unit"]).value_counts()
        got = run.units_reporting(words, labels=label).set_index("unit")["n_sentences"]
        assert len(expected) > 0, (words, label)
        assert got.sort_index().to_dict() == expected.sort_index().to_dict(), (words, label)
        # the example quoted for a unit is one of its hits
        for row in run.units_reporting(words, labels=label).itertuples():
            assert row.example in set(hit.loc[_unit(hit["unit"]) == row.unit, "text"])


def _with_problems(run: Run, sample_run: Path, tmp_path: Path) -> Run:
    """The run's own problems table, or (until the analyze stage writes one) groups of the run's
    real gap sentences by a shared word, written as problems.parquet in a copy of the run."""
    if not run.problems.empty:
        return run
    copy = tmp_path / "with_problems"
    shutil.copytree(sample_run, copy)
    s = run.report_sentences()
    gaps = s[s["label"] == "gap"]
    parts = []
    for cid, word in enumerate(("风险", "差距", "支部")):
        g = gaps[gaps["text"].str.contains(word, regex=False)]
        parts.append(pd.DataFrame({
            "cluster_id": cid, "cluster_name": word, "label": g["label"], "unit": g["unit"],
            "doc_id": g["doc_id"], "article_id": g["article_id"], "text": g["text"], "page": g["page"]}))
    pd.concat(parts, ignore_index=True).to_parquet(copy / "problems.parquet", index=False)
    return load_run(copy)


def test_units_reporting_a_problem_group_matches_problems_file(sample_run: Path, run: Run,
                                                               tmp_path: Path) -> None:
    r = _with_problems(run, sample_run, tmp_path)
    problems = pd.read_parquet(r.path / "problems.parquet")
    groups = r.problem_groups()
    assert len(groups) == problems["cluster_id"].nunique()
    assert groups["n_units"].is_monotonic_decreasing
    for g in pd.concat([groups.head(6), groups.tail(2)]).itertuples():  # a sample keeps it fast
        members = problems[problems["cluster_id"] == g.cluster_id]
        assert g.n_sentences == len(members)
        assert g.n_units == _unit(members["unit"]).nunique()
        expected = _unit(members["unit"]).value_counts().sort_index().to_dict()
        by_id = r.units_reporting(g.cluster_id).set_index("unit")["n_sentences"].sort_index().to_dict()
        by_name = r.units_reporting(g.cluster_name).set_index("unit")["n_sentences"].sort_index().to_dict()
        assert by_id == expected and by_name == expected


def test_filter_by_unit_label_theme_and_words(run: Run) -> None:
    df = run.filter(unit=["山东省", "福建"], label=["gap", "measure"])
    assert len(df) > 0
    assert set(df["unit"]) == {"山东省", "福建省"}
    assert set(df["label"]) <= {"gap", "measure"}
    assert set(df["kind"]) <= set(REPORT_KINDS)
    assert df["file"].str.endswith(".txt").all()
    theme = df["theme"].value_counts().index[0]
    assert (run.filter(unit="山东省", theme=theme)["theme"] == theme).all()
    words = run.filter(contains=["就业", "养老"])
    assert len(words) > 0 and words["text"].str.contains("就业|养老").all()
    with pytest.raises(KeyError, match="did you mean"):
        run.filter(unit="火星省")


def test_matrix_table_is_the_matrix_pivoted(sample_run: Path, run: Run) -> None:
    matrix = pd.read_parquet(sample_run / "matrix.parquet")
    wide = run.matrix_table()
    for (unit, theme, label), n in matrix.set_index(["unit", "theme", "label"])["n"].items():
        if label in ROLES:
            assert wide.loc[unit, (theme, label)] == n
    roles = run.matrix_table(by_theme=False, role_names=True)
    assert list(roles.columns) == ["成绩与做法", "问题与差距", "原因", "措施与打算"]
    assert roles.loc["山东省", "问题与差距"] == matrix.query("unit == '山东省' and label == 'gap'")["n"].sum()


def test_load_run_explains_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RunNotFoundError, match="huibian run"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "documents.csv").write_text("doc_id\n", encoding="utf-8")
    with pytest.raises(RunNotFoundError, match="sentences.parquet"):
        load_run(tmp_path / "half")
    monkeypatch.setenv("HUIBIAN_RUN_DIR", str(tmp_path / "from_env"))
    with pytest.raises(RunNotFoundError, match="from_env"):
        load_run()


def test_default_folder_is_found_from_a_subfolder(sample_run: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(sample_run, repo / "outputs" / "latest")
    (repo / "notebooks").mkdir()
    monkeypatch.chdir(repo / "notebooks")  # where Jupyter starts a notebook's kernel
    monkeypatch.delenv("HUIBIAN_RUN_DIR", raising=False)
    r = load_run()
    assert r.path.resolve() == (repo / "outputs" / "latest").resolve()
    assert len(r.sentences) == len(pd.read_parquet(sample_run / "sentences.parquet"))


def test_export_round_trips_to_excel_and_csv(run: Run, tmp_path: Path) -> None:
    sel = run.filter(unit="山东省", label="gap")
    # a control character pasted from a PDF must not break the XLSX
    dirty = pd.DataFrame({"text": ["发展\x07不平衡", "正常文本"], "pages": [[1, 2], []]})
    (xlsx,) = export({"gaps": sel, "dirty": dirty}, tmp_path / "out.xlsx")
    back = pd.read_excel(xlsx, sheet_name=None)
    assert list(back) == ["gaps", "dirty"]
    assert back["gaps"]["text"].tolist() == sel["text"].tolist()
    assert back["dirty"]["text"].tolist() == ["发展不平衡", "正常文本"]
    assert back["dirty"]["pages"].iloc[0] == "1、2"  # lists read as text in a spreadsheet
    (csv,) = export(sel, tmp_path / "gaps.csv")
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel shows the Chinese
    assert pd.read_csv(csv, encoding="utf-8-sig")["text"].tolist() == sel["text"].tolist()
    written = run.export(tmp_path / "folder", tables=["matrix", "figures"])
    assert [p.name for p in written] == ["matrix.csv", "figures.csv"]
    assert len(pd.read_csv(written[0], encoding="utf-8-sig")) == len(run.matrix)
    with pytest.raises(ValueError, match="one table"):
        export({"a": sel, "b": sel}, tmp_path / "two.csv")


def test_import_pipeline_stays_cheap() -> None:
    # `from pipeline import load_run` (this module's import) works; `import pipeline` alone,
    # as the CLI does, must not load pandas
    code = "import sys, pipeline; print(sorted(m for m in ('pandas', 'pipeline.api') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    assert Run.__module__ == "pipeline.api"


def _glyph_warnings(family: str | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    rc = {"font.family": "sans-serif", "font.sans-serif": [family] if family else ["DejaVu Sans"]}
    with rc_context(rc), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = Figure()
        fig.add_subplot().set_title("各单位问题与差距")
        fig.savefig(Path("/dev/null"), format="png")
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_cjk_font_draws_chinese_without_missing_glyphs() -> None:
    from pipeline.plotting import use_cjk_font

    family = use_cjk_font()
    assert "CJK" in family or "Hei" in family or "SC" in family
    assert _glyph_warnings(family) == []
    # the check can fail: matplotlib's default font has no Chinese glyphs
    assert _glyph_warnings(None)


def test_compare_with_is_what_huibian_compare_writes(sample_run: Path, run: Run, tmp_path: Path) -> None:
    from pipeline.cli import main
    from pipeline.run import RunConfig
    from pipeline.run import run as run_pipeline

    # a later "season" in which only one province reports again, with the same text
    later = tmp_path / "later"
    run_pipeline(RunConfig(inputs=[str(SAMPLE_GOV / "山东省.txt")], out=later, jobs=1))
    new = load_run(later)
    table = new.compare_with(run)
    assert main(["compare", str(sample_run), str(later), "--out", str(tmp_path / "cmp")]) == 0
    written = pd.read_parquet(tmp_path / "cmp" / "compare.parquet")
    # cluster_name (a label of top words) can break ties differently in another process
    same = ["unit", "status", "text_old", "text_new", "similarity"]
    pd.testing.assert_frame_equal(table[same], written[same])
    assert set(TABLES["compare"]) <= set(table.columns)
    shandong = table[table["unit"] == "山东省"]
    assert len(shandong) > 0 and (shandong["status"] == "persisting").all()  # same report, same problems
    gone = table[table["unit"] == "青海省"]
    assert len(gone) > 0 and (gone["status"] == "resolved").all()  # did not report this time
