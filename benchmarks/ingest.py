"""Ingest speed on text PDFs: pages per second of ``ingest_file`` (layout, furniture, paragraphs,
isolated child process included) next to bare pypdfium2 text extraction of the same file.

    python benchmarks/ingest.py [--pages 120] [--runs 5] [--word]

``--word`` also measures the same text as a Word document printed to PDF by LibreOffice: such
PDFs draw glyphs out of reading order, so lines are rebuilt from glyph boxes (the slower path).

Generates a ≥100-page Chinese PDF with reportlab (STSong-Light) from the bundled reports, then
prints the median over several runs. Goal: ≥ 200 pages/s on one core.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pypdfium2 as pdfium  # noqa: E402
from ingest_fixtures import GOV, make_docx, make_pdf, report_paragraphs  # noqa: E402

from pipeline.ingest import ingest_file  # noqa: E402


def build(path: Path, pages: int) -> tuple[int, list[str]]:
    paras: list[str] = []
    names = sorted(p.stem for p in GOV.glob("*.txt"))
    while True:
        for name in names:
            paras += report_paragraphs(name)
        make_pdf(paras, path)
        n = len(pdfium.PdfDocument(str(path)))
        if n >= pages:
            return n, paras


def build_word(path: Path, paras: list[str]) -> int:
    """The same paragraphs as DOCX (python-docx), printed to PDF by LibreOffice."""
    import subprocess

    docx = make_docx(paras, path.with_suffix(".docx"))
    subprocess.run(["soffice", f"-env:UserInstallation={(path.parent / 'lo').as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(path.parent), str(docx)],
                   check=True, capture_output=True, timeout=600)
    return len(pdfium.PdfDocument(str(path)))


def bare(path: Path) -> int:
    pdf = pdfium.PdfDocument(str(path))
    chars = 0
    for i in range(len(pdf)):
        page = pdf[i]
        tp = page.get_textpage()
        chars += len(tp.get_text_bounded())
        tp.close()
        page.close()
    pdf.close()
    return chars


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (ingest parses in a forked child)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def median_seconds(fn, runs: int) -> tuple[float, float]:  # noqa: ANN001
    """(median wall seconds, median CPU seconds): on a shared machine CPU time is the per-core cost."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), _cpu()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(_cpu() - c0)
    return statistics.median(wall), statistics.median(cpu)


def measure(label: str, path: Path, n: int, runs: int) -> None:
    doc = ingest_file(path)  # warm-up (imports, page cache) and a sanity check
    assert doc.status == "ok", doc.reason
    t_bare, c_bare = median_seconds(lambda: bare(path), runs)
    t_ingest, c_ingest = median_seconds(lambda: ingest_file(path), runs)
    body = sum(1 for b in doc.blocks if b.kind != "furniture")
    furniture = sum(1 for b in doc.blocks if b.kind == "furniture")
    print(f"{label}: {n} pages, {path.stat().st_size // 1024} KB; ingest → {body} blocks + {furniture} furniture")
    print(f"  {'':20s} {'wall pages/s':>13s} {'CPU pages/s':>12s}   (medians of {runs} runs)")
    print(f"  {'bare pypdfium2 text':20s} {n / t_bare:13.0f} {n / c_bare:12.0f}")
    print(f"  {'huibian ingest_file':20s} {n / t_ingest:13.0f} {n / c_ingest:12.0f}   "
          f"({t_ingest / t_bare:.2f}× bare wall time)")
    print(f"  goal ≥ 200 pages/s per core (CPU): {'met' if n / c_ingest >= 200 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=120)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--word", action="store_true", help="also a LibreOffice-printed PDF of the same text")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "season.pdf"
        n, paras = build(path, a.pages)
        measure("reportlab PDF", path, n, a.runs)
        if a.word:
            word = Path(tmp) / "word" / "season.pdf"
            word.parent.mkdir()
            measure("Word→PDF (LibreOffice)", word, build_word(word, paras), a.runs)


if __name__ == "__main__":
    main()
