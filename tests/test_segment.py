"""Segmentation keeps the domain's set phrases whole (dictionaries/userdict.txt)."""

from __future__ import annotations

import jieba

from pipeline.segment import cut

TEXT = ("认真落实“三会一课”制度和一岗双责，深入开展两学一做学习教育，"
        "加强党风廉政建设，践行“三个代表”重要思想，反对形式主义、官僚主义。")
TERMS = ["三会一课", "一岗双责", "两学一做", "党风廉政建设", "三个代表", "形式主义", "官僚主义"]


def test_domain_terms_stay_whole() -> None:
    toks = cut(TEXT)
    for term in TERMS:
        assert term in toks, (term, toks)
    assert "".join(toks) == TEXT.replace(" ", "")  # nothing lost or invented


def test_plain_jieba_would_split_some_of_them() -> None:
    """The user dictionary is what keeps them whole (bare jieba splits at least one)."""
    plain = jieba.lcut(TEXT)
    assert any(term not in plain for term in TERMS)
