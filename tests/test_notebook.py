"""Issue 9: notebooks/season_analysis.ipynb runs top to bottom on a run of the sample season, its
figures show Chinese (no missing glyphs), and the repository holds it without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from nbclient import NotebookClient

from pipeline import load_run

NOTEBOOK = REPO / "notebooks" / "season_analysis.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 8
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    text = "\n".join(c.source for c in nb.cells)
    assert "huibian run" in text and "HUIBIAN_RUN_DIR" in text  # tells the analyst what to run first


@pytest.fixture(scope="module")
def executed(sample_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, Path]:
    exports = tmp_path_factory.mktemp("notebook_exports")
    mp = pytest.MonkeyPatch()
    # the kernel inherits the environment: point the notebook at the test's run and export folder
    mp.setenv("HUIBIAN_RUN_DIR", str(sample_run))
    mp.setenv("HUIBIAN_EXPORT_DIR", str(exports))
    mp.delenv("HUIBIAN_UNIT", raising=False)
    mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        # raises CellExecutionError, naming the cell, on any error
        NotebookClient(nb, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        mp.undo()
    return nb, exports


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_notebook_runs_and_its_figures_show_chinese(executed: tuple[nbformat.NotebookNode, Path],
                                                     sample_run: Path) -> None:
    nb, _ = executed
    run_dir = sample_run
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "missing from font" not in streams, streams  # matplotlib's warning for boxes instead of 汉字
    assert "CJK font: Noto Sans CJK" in streams
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # role and theme heat maps and the profile chart, plus a chart each for problems and figures
    # when the run has them
    run = load_run(run_dir)
    expected = 3 + (not run.problem_groups(labels="gap").empty) + (not run.figures.empty)
    assert len(images) == expected
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "山东省" in html and "问题与差距" in html  # the matrix and a unit profile were shown


def test_notebook_exports_what_it_filtered(executed: tuple[nbformat.NotebookNode, Path]) -> None:
    import pandas as pd

    _, exports = executed
    season = exports / "season.xlsx"
    assert season.exists()
    assert {"matrix", "problems", "figures"} <= set(pd.read_excel(season, sheet_name=None))
    (csv,) = exports.glob("*.csv")
    sel = pd.read_csv(csv, encoding="utf-8-sig")
    assert len(sel) > 0 and set(sel["label"]) <= {"gap", "cause", "measure"}
    assert sel["unit"].nunique() == 1 and sel["unit"].iloc[0] + ".csv" == csv.name
