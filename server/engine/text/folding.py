"""ASCII folding (Qdrant's ``ascii_folding`` option): accented Latin letters to ASCII.

Qdrant ports Lucene's ``ASCIIFoldingFilter`` table. Quiver builds an equivalent table
once from Unicode's compatibility decompositions (NFKD, combining marks dropped) over the
Latin, letter-like and full-width blocks, plus the letters that have no decomposition
(``ß``, ``æ``, ``ø``, ``ł`` ...). Other scripts (Greek, Cyrillic ...) are left alone, as
Lucene leaves them. Folding a string is then one ``str.translate`` call, in C.
"""

from __future__ import annotations

import unicodedata

_FOLDED_BLOCKS = (
    range(0x00A0, 0x0250),  # Latin-1 supplement, Latin extended A and B
    range(0x1D00, 0x1DC0),  # phonetic extensions
    range(0x1E00, 0x1F00),  # Latin extended additional
    range(0x2070, 0x20A0),  # superscripts and subscripts
    range(0x2100, 0x2150),  # letter-like symbols
    range(0x2460, 0x2500),  # enclosed alphanumerics
    range(0x2C60, 0x2C80),  # Latin extended C
    range(0xA720, 0xA800),  # Latin extended D
    range(0xFB00, 0xFB07),  # Latin ligatures (ﬁ, ﬂ ...)
    range(0xFF01, 0xFF5F),  # full-width ASCII
)

_NO_DECOMPOSITION = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH",
    "\u0131": "i", "ŋ": "n", "Ŋ": "N", "ĸ": "q", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
    "ƒ": "f", "ɐ": "a", "ə": "a", "ɛ": "e", "ɔ": "o", "ʃ": "s", "ƀ": "b", "ƚ": "l",
}  # fmt: skip


def _fold_one(char: str) -> str | None:
    if char in _NO_DECOMPOSITION:
        return _NO_DECOMPOSITION[char]
    decomposed = unicodedata.normalize("NFKD", char)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    if stripped and stripped.isascii() and stripped.strip():
        return stripped
    return None


def _build_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for block in _FOLDED_BLOCKS:
        for code in block:
            folded = _fold_one(chr(code))
            if folded is not None and folded != chr(code):
                table[code] = folded
    return table


_TABLE = _build_table()


def fold_to_ascii(text: str) -> str:
    """``text`` with accented Latin letters replaced by their ASCII letters."""
    if text.isascii():
        return text
    return text.translate(_TABLE)
