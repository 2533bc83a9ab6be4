"""Text clean-ups the T5 / ATTEMPT preprocessors apply before formatting."""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")


def pad_punctuation(text: str) -> str:
    """T5's ``_pad_punctuation`` (used for SQuAD / MRQA): a space on both sides of every character
    that is not a letter, number, combining mark, underscore or whitespace; whitespace runs
    collapsed. Unlike T5 the result is stripped, so targets carry no trailing space."""
    out = []
    for ch in str(text):
        if ch == "_" or ch.isspace() or unicodedata.category(ch)[0] in "LNM":
            out.append(ch)
        else:
            out.append(f" {ch} ")
    return _WS.sub(" ", "".join(out)).strip()


def remove_markup(text: str) -> str:
    """MultiRC: ``<br>`` becomes a space, ``<b>`` / ``</b>`` disappear (as T5 / ATTEMPT)."""
    return re.sub(r"<(/)?b>", "", re.sub(r"<br>", " ", text))


def record_passage(passage: str) -> str:
    """ReCoRD: the ``@highlight`` bullet markers become sentence breaks (as T5 / ATTEMPT)."""
    passage = re.sub(r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ", passage)
    return re.sub(r"\n@highlight\n", ". ", passage)


def mark_span(text: str, span: str, word_index: int, mark: str) -> str:
    """Put ``mark`` around ``span``, which must start at whitespace-separated word ``word_index``
    (T5 / ATTEMPT WSC): ``mark_span("a big dog", "big", 1, "*") == "a * big * dog"``."""
    pattern = rf"^((?:\S+\s){{{word_index}}})({re.escape(span)})"
    marked, n = re.subn(pattern, lambda m: f"{m.group(1)}{mark} {m.group(2)} {mark}", text)
    if n != 1:
        raise ValueError(f"span {span!r} is not at word {word_index} of {text!r}")
    return marked


def stsb_target(score: float) -> str:
    """STS-B as T5's string regression: the score rounded to the nearest 0.2, one decimal
    (``round`` is half-to-even, like ``tf.round``): 3.75 -> "3.8", 2.5 -> "2.4"."""
    score = float(score)
    if not 0.0 <= score <= 5.0:
        raise ValueError(f"STS-B score {score} is outside [0, 5]")
    return f"{round(score * 5) / 5:.1f}"
