"""Scanned PDFs and images: OCR with RapidOCR (ONNX models ship inside its wheel; nothing is
downloaded).  OCR boxes become positioned lines, so running heads, folios and wrapped paragraphs
are handled by the same layout rules as a PDF text layer.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..model import Document
from .base import IngestError, Limits
from .layout import Line, Page, pages_to_blocks

#: render scanned PDF pages at this resolution (dots per inch) for OCR
DPI = 150
#: images larger than this many pixels are refused (decompression bombs)
MAX_PIXELS = 60_000_000


@lru_cache(maxsize=1)
def engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise IngestError("scanned document needs OCR, but rapidocr-onnxruntime is not installed "
                          "(pip install 'huibian[ocr]')") from None
    # upright report pages: no angle classifier; detection on a ≤1280 px image is plenty for print
    return RapidOCR(use_cls=False, det_limit_type="max", det_limit_side_len=1280)


def ocr_lines(image: Any, scale: float = 1.0) -> tuple[list[Line], float]:
    """OCR an image (numpy array) → lines in page units (y up), and the page height."""
    result, _ = engine()(image, use_cls=False)
    height = image.shape[0] / scale
    items = []
    for box, text, score in result or []:
        if not text.strip() or float(score) < 0.3:
            continue
        xs = [p[0] / scale for p in box]
        ys = [p[1] / scale for p in box]
        items.append((min(xs), max(xs), min(ys), max(ys), text.strip()))
    # boxes on the same text row (split by wide gaps) form one line, read left to right
    items.sort(key=lambda t: ((t[2] + t[3]) / 2, t[0]))
    rows: list[list[tuple[float, float, float, float, str]]] = []
    for it in items:
        mid = (it[2] + it[3]) / 2
        if rows:
            last = rows[-1]
            top, bottom = min(t[2] for t in last), max(t[3] for t in last)
            if top <= mid <= bottom:
                last.append(it)
                continue
        rows.append([it])
    lines = []
    for row in rows:
        row.sort(key=lambda t: t[0])
        x0, x1 = row[0][0], max(t[1] for t in row)
        y_top, y_bottom = min(t[2] for t in row), max(t[3] for t in row)
        lines.append(Line(text="".join(t[4] for t in row), x0=x0, x1=x1, top=height - y_top,
                          bottom=height - y_bottom, height=y_bottom - y_top))
    return lines, height


def ocr_pdf_pages(pdf: Any, pages: list[int], budget: float | None = None) -> dict[int, list[Line]]:
    """OCR the given 0-based pages of an open pypdfium2 document (within ``budget`` seconds)."""
    out: dict[int, list[Line]] = {}
    scale = DPI / 72
    t0 = time.monotonic()
    for pno in pages:
        if budget is not None and out and time.monotonic() - t0 > budget:
            break
        page = pdf[pno]
        bitmap = page.render(scale=scale, grayscale=True)
        image = bitmap.to_numpy()
        if image.ndim == 2:
            import numpy as np

            image = np.stack([image] * 3, axis=-1)
        out[pno], _ = ocr_lines(image, scale=scale)
        page.close()
    return out


class ImageBackend:
    name = "image"
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
    isolated = True
    limits = Limits(timeout=180.0, memory_mb=3072)

    def accepts(self, path: Path, head: bytes) -> bool:
        return head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")) or (
            head[:4] == b"RIFF" and head[8:12] == b"WEBP")

    def prepare(self) -> None:
        import numpy  # noqa: F401
        from PIL import Image  # noqa: F401

    def convert(self, path: Path, doc: Document) -> Document:
        import numpy as np
        from PIL import Image, ImageSequence, UnidentifiedImageError

        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        pages: list[Page] = []
        try:
            with Image.open(path) as im:
                for n, frame in enumerate(ImageSequence.Iterator(im), start=1):  # multi-page TIFF
                    if n > 40:
                        doc.warnings.append("only the first 40 frames OCR'd")
                        break
                    rgb = np.asarray(frame.convert("RGB"))
                    lines, height = ocr_lines(rgb)
                    pages.append(Page(number=n, height=height, lines=lines))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as e:
            raise IngestError(f"unreadable image ({type(e).__name__}: {e})") from None
        doc.blocks = pages_to_blocks(pages)
        doc.meta["ocr_pages"] = str(len(pages))
        if not any(b.kind != "furniture" for b in doc.blocks):
            raise IngestError("no text found in the image")
        return doc
