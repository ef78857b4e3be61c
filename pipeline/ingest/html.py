"""Web pages saved from a site: main text without navigation and furniture (trafilatura).

trafilatura's XML output keeps the structure we need: ``<head>`` → heading blocks, ``<table>`` →
table blocks, ``<p>``/``<item>`` → paragraphs.  Nothing in the page is fetched or executed: the
markup is only parsed (scripts and styles are dropped by trafilatura).
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree
from lxml import html as lxml_html

from ..model import Block, Document
from .base import IngestError, Limits
from .layout import table_block
from .text import decode

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "big5-hkscs": "big5hkscs"}
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def decode_html(data: bytes) -> tuple[str, str]:
    """The page's declared charset when it decodes cleanly, else detection as for text."""
    m = _META_CHARSET.search(data[:4096])
    if m:
        enc = m.group(1).decode("ascii").lower()
        enc = _ALIASES.get(enc, enc)
        try:
            return data.decode(enc), enc
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration is common: fall back to detection
    return decode(data)


def _text(el: etree._Element) -> str:
    return re.sub(r"[ \t\r\f\v]+", " ", "".join(el.itertext())).strip()


def _h1(markup: str) -> str:
    try:
        tree = lxml_html.fromstring(markup)
    except (etree.ParserError, ValueError):
        return ""
    h1 = tree.find(".//h1")
    return re.sub(r"\s+", " ", h1.text_content()).strip() if h1 is not None else ""


class HtmlBackend:
    name = "html"
    suffixes = (".html", ".htm", ".xhtml", ".shtml", ".mht", ".mhtml")
    isolated = True  # lxml is C: a pathological page must not take the run down
    limits = Limits(timeout=60.0, memory_mb=2048)

    def accepts(self, path: Path, head: bytes) -> bool:
        return b"<" in head

    def convert(self, path: Path, doc: Document) -> Document:
        markup, enc = decode_html(path.read_bytes())
        doc.encoding = enc
        import trafilatura  # here: 0.15 s to import, and most seasons hold no web pages

        xml = trafilatura.extract(markup, output_format="xml", include_comments=False, include_tables=True,
                                  favor_recall=True, deduplicate=False)
        if not xml:
            raise IngestError("web page has no main text")
        try:
            root = etree.fromstring(xml.encode("utf-8"), _SAFE_XML)
        except etree.XMLSyntaxError as e:
            raise IngestError(f"web page text could not be parsed ({e})") from None
        main = root.find("main")
        blocks: list[Block] = []
        h1 = _h1(markup)
        for i, el in enumerate(main.iterchildren() if main is not None else []):
            tag = el.tag
            if tag == "table":
                rows = [[_text(c) for c in row.iter("cell")] for row in el.iter("row")]
                if any(any(r) for r in rows):
                    blocks.append(table_block(rows, i))
            elif tag == "list":
                blocks += [Block(text=t, para=i) for item in el.iter("item") if (t := _text(item))]
            elif (t := _text(el)):
                if tag == "head":
                    m = re.match(r"h(\d)", el.get("rend", ""))
                    blocks.append(Block(text=t, para=i, kind="heading", level=int(m.group(1)) if m else 2))
                else:
                    blocks.append(Block(text=t, para=i))
        if h1 and not any(b.text == h1 for b in blocks[:5]):  # trafilatura keeps the title as metadata
            blocks.insert(0, Block(text=h1, para=-1, kind="heading", level=1))
        doc.blocks = blocks
        if not blocks:
            raise IngestError("web page has no main text")
        meta = trafilatura.extract_metadata(markup)
        if meta is not None and meta.title:
            doc.meta.setdefault("title", meta.title)
        return doc
