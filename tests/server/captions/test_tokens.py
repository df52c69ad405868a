"""Our CLIP token counts against open_clip's own tokenizer (which needs torch, so only here)."""

from __future__ import annotations

import hashlib
import random

import pytest

from server.captions import tokens
from server.captions.compose import compose
from server.taxonomy.format import load_default


def _corpus() -> list[str]:
    spec = load_default()
    rng = random.Random(6)
    closed = [c for c in spec.categories() if c.values]
    captions: list[str] = []
    for _ in range(250):
        values: dict[str, object] = {}
        for category in rng.sample(closed, k=rng.randint(3, len(closed))):
            keys = [v.key for v in category.values]
            values[category.full_key] = (
                rng.sample(keys, k=rng.randint(1, min(3, len(keys))))
                if category.kind == "multi"
                else rng.choice(keys)
            )
        captions.append(compose(spec, values, include_sensitive=rng.random() < 0.5))
    odd = [
        "A Full-Body SHOT, a woman's red T-shirt (cotton) & blue jeans!!",
        "it's, they're, we've, I'm, you'll, he'd -- 'quoted' \"double\"",
        "Café crème, naïve façade, Ærøskøbing, Straße, İstanbul",
        "日本語のキャプション、中文字幕, 한국어 캡션",
        "emoji 😀👗👠 and flags 🇫🇷 and ZWJ 👩‍👩‍👧",
        "mojibake cafÃ© and &amp;amp; entities &lt;b&gt; and &#39;",
        "tabs\tand\nnewlines\r\n  and   runs of   spaces  ",
        "numbers 1234567890, 3.14, 1/2, 100%, #42, $9.99",
        "<start_of_text> special <end_of_text> tokens in text",
        "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ and ﬁ ligatures",
        "snake_case-and-kebab-case_words and CamelCaseWords",
        "",
        "   ",
        "a " * 120,
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "\u00a0non-breaking\u2003em-space\u200bzero-width",
    ]
    long = ", ".join(captions[:12])
    return [*captions, *odd, long, long.upper()]


def test_our_counts_equal_open_clips_tokenizer_on_captions_punctuation_unicode_and_long_text() -> None:
    open_clip_tokenizer = pytest.importorskip("open_clip.tokenizer", reason="the ml extra is not installed")
    reference = open_clip_tokenizer.SimpleTokenizer()
    corpus = _corpus()
    assert len(corpus) > 250
    mismatches = [
        (text, tokens.count_tokens(text), len(reference.encode(text)))
        for text in corpus
        if tokens.count_tokens(text) != len(reference.encode(text))
    ]
    assert mismatches == []
    assert all(tokens.context_tokens(t) == len(reference.encode(t)) + 2 for t in corpus[:20])
    assert max(tokens.context_tokens(t) for t in corpus) > tokens.CONTEXT_LENGTH  # some need trimming


def test_the_shipped_vocabulary_is_open_clips_file() -> None:
    found = tokens.vocab_path()
    if found == tokens.SHIPPED_VOCAB:
        pytest.skip("open_clip is not installed: only the shipped copy exists")
    assert (
        hashlib.sha256(found.read_bytes()).digest()
        == hashlib.sha256(tokens.SHIPPED_VOCAB.read_bytes()).digest()
    )


def test_counting_works_from_the_shipped_copy_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # The API without the ml extra: find_spec finds nothing, the shipped copy is used.
    monkeypatch.setattr(tokens.importlib.util, "find_spec", lambda name: None)
    assert tokens.vocab_path() == tokens.SHIPPED_VOCAB
    assert len(tokens._merge_ranks(tokens.SHIPPED_VOCAB)) == 49152 - 256 - 2
    assert tokens.count_tokens("a full-body shot") == 5  # a / full / - / body / shot


def test_the_api_side_never_imports_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from server.captions import tokens, service; "
        "tokens.count_tokens('a headshot'); print('torch' in sys.modules or 'open_clip' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plain_text_is_cleaned_as_ftfy_would_clean_it() -> None:
    import html
    import string

    import ftfy

    rng = random.Random(9)
    samples = [*string.printable[:95], *(c + d for c in string.printable[:95] for d in "a ;'")]
    samples += ["".join(rng.choice(string.printable[:95]) for _ in range(30)) for _ in range(2000)]
    for text in samples:
        if tokens.plain_text(text):
            repaired = html.unescape(html.unescape(ftfy.fix_text(text)))
            assert tokens.clean(text) == " ".join(repaired.split()).lower()
