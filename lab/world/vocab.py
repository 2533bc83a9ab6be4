"""The lab's tokenizer: a Unigram vocabulary of whole words (scored by their log frequency in the
lab's text) plus single characters as a fallback, in T5's layout (pad=0, eos=1, unk=2, pieces,
then sentinels), as a ``T5Tokenizer``.

Why not ``training.tiny.train_tokenizer``: on this closed ~430-word corpus the `tokenizers`
Unigram trainer returns ~620 pieces for 992 requested and splits 412 of the 428 words into
several pieces ("is" -> "▁ i s", "bigger" -> "▁big g e r"): inputs get ~3x longer and copying a
word becomes a multi-token skill. With every word one piece, the backbone learns in the CPU budget.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from transformers import T5Tokenizer

from training.tiny import SPECIALS

SPACE = "▁"


def word_tokenizer(lines: Iterable[str], extra_ids: int, min_count: int = 1) -> T5Tokenizer:
    words: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    for line in lines:
        for w in line.split():
            words[w] += 1
            chars.update(w)
    kept = [(w, c) for w, c in words.most_common() if c >= min_count]
    total = sum(c for _, c in kept)
    pieces = [(SPACE + w, math.log(c / total)) for w, c in kept]
    floor = min(score for _, score in pieces) - 10.0  # characters only where no word piece fits
    pieces += [(SPACE, floor)] + [(ch, floor - 1.0) for ch, _ in chars.most_common() if SPACE + ch not in dict(pieces)]
    pieces += [(SPACE + ch, floor) for ch, _ in chars.most_common() if (SPACE + ch) not in dict(pieces)]
    vocab = [(s, 0.0) for s in SPECIALS] + pieces
    return T5Tokenizer(vocab=vocab, extra_ids=extra_ids)
