"""CLIP's text token count, without torch: the captions are trimmed to what CLIP reads.

CLIP's tokenizer (Radford et al. 2021; open_clip's `SimpleTokenizer`, `clean="lower"`) is:

1. clean: repair mojibake with ftfy, unescape HTML entities twice, collapse every run of
   whitespace to one space, strip, lower-case;
2. split into pieces with one regex: the two special tokens, the English contractions
   (`'s 't 're 've 'm 'll 'd`), runs of letters, single digits, runs of anything else that is
   neither whitespace, letter nor digit;
3. spell each piece's UTF-8 bytes with 256 printable stand-in characters, mark its last symbol
   as a word end (`</w>`), and merge adjacent symbol pairs by byte-pair encoding: always the pair
   ranked first in the merges file, every non-overlapping occurrence left to right, until no
   ranked pair is left. Each remaining symbol is one token.

A context is `start + tokens + end`: CLIP reads 77 tokens, so a caption may hold 75.

The merges file (`bpe_simple_vocab_16e6.txt.gz`) is open_clip's copy when open_clip is installed
(found with `importlib.util.find_spec`, which imports nothing, so no torch), and otherwise the
identical copy shipped beside this module (MIT, see VOCAB_LICENSE.txt). Importing open_clip
here is not an option: its package imports torch, which the API never loads.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
from functools import cache, lru_cache
from pathlib import Path
from typing import Final

import ftfy
import regex

CONTEXT_LENGTH: Final = 77  # CLIP's text context, start and end tokens included
SPECIAL_TOKENS: Final = ("<start_of_text>", "<end_of_text>")
VOCAB_NAME: Final = "bpe_simple_vocab_16e6.txt.gz"
SHIPPED_VOCAB: Final = Path(__file__).with_name(VOCAB_NAME)
# The merges CLIP uses: the file's lines after its header, up to a 49,408-token vocabulary
# (256 bytes, 256 word-final bytes, these merges, 2 special tokens).
_MERGE_COUNT: Final = 49152 - 256 - 2

_PIECES: Final = regex.compile(
    "|".join(regex.escape(t) for t in SPECIAL_TOKENS)
    + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def vocab_path() -> Path:
    """open_clip's merges file when it is installed, else the copy shipped with this package."""
    spec = importlib.util.find_spec("open_clip")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / VOCAB_NAME
        if candidate.is_file():
            return candidate
    return SHIPPED_VOCAB


def _byte_symbols() -> list[str]:
    """The stand-in character for each byte value: printable Latin-1 bytes stand for themselves,
    the others (controls, space, a few gaps) take the code points from 256 upwards, in order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols: dict[int, str] = {b: chr(b) for b in printable}
    shifted = 0
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = chr(256 + shifted)
            shifted += 1
    return [symbols[b] for b in range(256)]


_BYTE_SYMBOLS: Final = _byte_symbols()


@cache
def _merge_ranks(path: Path | None = None) -> dict[tuple[str, str], int]:
    lines = gzip.decompress((path or vocab_path()).read_bytes()).decode("utf-8").split("\n")
    ranks: dict[tuple[str, str], int] = {}
    for rank, line in enumerate(lines[1 : 1 + _MERGE_COUNT]):
        first, second = line.split()
        ranks[(first, second)] = rank
    return ranks


def preload() -> None:
    """Load the merge ranks now (about a tenth of a CPU-second): a process that forks workers
    calls this once, so that no child pays for it on its first caption."""
    _merge_ranks()


def plain_text(text: str) -> bool:
    """Whether cleaning `text` only collapses its whitespace and lower-cases it: printable ASCII
    without `&` is nothing ftfy repairs and no HTML entity (captions nearly always are)."""
    return text.isascii() and text.isprintable() and "&" not in text


def clean(text: str) -> str:
    """What CLIP reads of `text`: repaired, unescaped, whitespace collapsed, lower-case."""
    if not plain_text(text):
        text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return " ".join(text.split()).lower()


@lru_cache(maxsize=65536)
def _piece_tokens(piece: str) -> int:
    """How many BPE tokens one regex piece becomes."""
    if piece in SPECIAL_TOKENS:
        return 1
    symbols = [_BYTE_SYMBOLS[b] for b in piece.encode("utf-8")]
    symbols[-1] += "</w>"
    ranks = _merge_ranks()
    while len(symbols) > 1:
        best: tuple[str, str] | None = None
        best_rank = len(ranks)
        for pair in zip(symbols, symbols[1:], strict=False):
            rank = ranks.get(pair)
            if rank is not None and rank < best_rank:
                best, best_rank = pair, rank
        if best is None:
            break
        merged: list[str] = []
        i = 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return len(symbols)


def count_tokens(text: str) -> int:
    """CLIP tokens of `text`, without the start and end tokens."""
    return sum(_piece_tokens(piece) for piece in _PIECES.findall(clean(text)))


def context_tokens(text: str) -> int:
    """CLIP tokens of `text` as a context: start and end tokens included (CLIP reads 77)."""
    return count_tokens(text) + 2
