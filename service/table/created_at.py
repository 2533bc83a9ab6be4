"""``created_at`` kept as 8 bytes per task instead of a Python string (~80 bytes each).

The store writes ``created_at`` as ``YYYY-MM-DDTHH:MM:SS+00:00`` (:func:`mpt_core.artifacts.utc_now`);
such a value is kept as its epoch second and rendered back byte-identical. Anything else (an
imported file's own text) is kept verbatim by the caller under :data:`OTHER`; the empty string
(a hand-made file without metadata) is :data:`EMPTY`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

EMPTY = np.iinfo(np.int64).min  # ""
OTHER = EMPTY + 1  # not canonical: the caller keeps the text
_SUFFIX = "+00:00"
_LEN = 25  # len("2026-11-26T12:00:00+00:00")


def encode_many(values: Sequence[str]) -> np.ndarray:
    """(n,) int64: epoch seconds of canonical values, EMPTY for "", OTHER for the rest.

    Each distinct value is parsed once (tasks written together share their second), vectorised."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) < len(values):
        codes = dict(zip(distinct, _encode_distinct(distinct).tolist()))
        return np.array([codes[v] for v in values], dtype=np.int64)
    return _encode_distinct(values)


def _encode_distinct(values: Sequence[str]) -> np.ndarray:
    n = len(values)
    out = np.full(n, OTHER, dtype=np.int64)
    if n == 0:
        return out
    text = np.array(values, dtype=str)  # (n,) '<U{longest}'
    lengths = np.strings.str_len(text)
    out[lengths == 0] = EMPTY
    canonical = np.flatnonzero((lengths == _LEN) & np.strings.endswith(text, _SUFFIX))
    if len(canonical) == 0:
        return out
    body = text[canonical].astype("U19")  # the part before "+00:00"
    try:
        seconds = body.astype("datetime64[s]")
    except ValueError:  # one malformed value: decide one by one
        out[canonical] = [encode_one(values[i]) for i in canonical.tolist()]
        return out
    exact = np.datetime_as_string(seconds, unit="s") == body  # round trip, so rendering gives the same text
    out[canonical[exact]] = seconds[exact].astype(np.int64)
    return out


def encode_one(value: str) -> int:
    if value == "":
        return int(EMPTY)
    if len(value) != _LEN or not value.endswith(_SUFFIX):
        return int(OTHER)
    try:
        second = np.datetime64(value[:19], "s")
    except ValueError:
        return int(OTHER)
    return int(second.astype(np.int64)) if np.datetime_as_string(second, unit="s") == value[:19] else int(OTHER)


@functools.lru_cache(maxsize=65_536)  # tasks written together share their second
def decode(code: int) -> str:
    """The text of an encoded value (not OTHER: the caller holds that text)."""
    if code == EMPTY:
        return ""
    return np.datetime_as_string(np.datetime64(int(code), "s"), unit="s") + _SUFFIX
