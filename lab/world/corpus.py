"""The world text for span corruption (T5's unsupervised objective): statements of what every
word of the lexicon is (category, size, polarity), size comparisons, scenes about people and
plain sentences. It uses every word, unsplit: it is the backbone's world knowledge, as C4 is T5's.
No task prefix and no input format of a family appears in it."""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from .lexicon import NEGATIVE, NOUNS, POSITIVE, article
from .scenes import ScenePools, sample_scene
from .world import World, stable_seed

SIZE_WORDS = {
    1: "tiny",
    2: "very small",
    3: "small",
    4: "fairly small",
    5: "medium sized",
    6: "fairly large",
    7: "large",
    8: "very large",
    9: "huge",
}


class _AllWords(ScenePools):
    """Scene pools holding every word (train + dev + test): world text is not split."""

    def __init__(self, world: World):
        super().__init__(world, "corpus", "train")
        for split in ("dev", "test"):
            other = ScenePools(world, "corpus", split)
            self.names += other.names
            for r in self.values:
                self.values[r] = self.values[r] + other.values[r]


def world_lines(world: World, n: int, seed: int = 0) -> list[str]:
    rng = random.Random(stable_seed(world.cfg.seed, "corpus", seed))
    pools = _AllWords(world)
    nouns, out = list(NOUNS), []
    kinds = ("noun", "compare", "adjective", "scene", "sentence")
    while len(out) < n:
        kind = rng.choice(kinds)
        if kind == "noun":
            w = rng.choice(nouns)
            cat, size = NOUNS[w]
            out.append(f"{article(w)} {w} is a kind of {cat} . {article(w)} {w} is {SIZE_WORDS[size]} .")
        elif kind == "compare":
            x, y = rng.sample(nouns, 2)
            if NOUNS[x][1] == NOUNS[y][1]:
                out.append(f"{article(x)} {x} is about as big as {article(y)} {y} .")
            else:
                rel = "bigger" if NOUNS[x][1] > NOUNS[y][1] else "smaller"
                out.append(f"{article(x)} {x} is {rel} than {article(y)} {y} .")
        elif kind == "adjective":
            good = rng.random() < 0.5
            a = rng.choice(POSITIVE if good else NEGATIVE)
            b = rng.choice(POSITIVE if good else NEGATIVE)
            out.append(f"people {'love' if good else 'hate'} things that are {a} . {a} is like {b} .")
        elif kind == "scene":
            out.append(sample_scene(pools, rng, people=rng.choice((1, 2, 3))).render(rng))
        else:
            a = rng.choice(POSITIVE + NEGATIVE)
            w = rng.choice(nouns)
            out.append(f"the {w} was {a} . i saw {article(w)} {w} .")
    return out


def salient_facts(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` world-knowledge sentences with their salient span cut out: (text with ``{}``, span).
    Span corruption that always drops the salient span (T5's "salient span masking") makes the
    model predict the category, size and polarity of *every* word, tasks' held-out words included."""
    rng = random.Random(stable_seed("salient", seed))
    nouns, out = list(NOUNS), []
    while len(out) < n:
        kind = rng.randrange(4)
        w = rng.choice(nouns)
        cat, size = NOUNS[w]
        if kind == 0:
            out.append((f"{article(w)} {w} is a kind of {{}} .", cat))
        elif kind == 1:
            out.append((f"{article(w)} {w} is {{}} .", SIZE_WORDS[size]))
        elif kind == 2:
            y = rng.choice([v for v in nouns if NOUNS[v][1] != size])
            out.append(
                (f"{article(w)} {w} is {{}} than {article(y)} {y} .", "bigger" if size > NOUNS[y][1] else "smaller")
            )
        else:
            good = rng.random() < 0.5
            out.append(
                (
                    f"people {{}} things that are {rng.choice(POSITIVE if good else NEGATIVE)} .",
                    "love" if good else "hate",
                )
            )
    return out


def _partition(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split into ``parts`` positive integers at random cut points."""
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    return [b - a for a, b in zip([0] + cuts, cuts + [total])]


def span_corrupt(
    ids: Sequence[int], rng: random.Random, sentinels: Sequence[int], noise: float = 0.15, mean_span: float = 3.0
) -> tuple[list[int], list[int]]:
    """T5 span corruption of one token sequence (no EOS), as T5's ``random_spans_noise_mask``:
    ``noise`` of the tokens, in spans of mean length ``mean_span``, become one sentinel each in
    the input; the target lists each sentinel followed by its span, then a closing sentinel.
    Returns (input ids, target ids), without EOS."""
    n = len(ids)
    if n < 2:
        raise ValueError(f"span corruption needs >= 2 tokens, got {n}")
    n_noise = min(n - 1, max(1, round(n * noise)))
    n_spans = max(1, min(len(sentinels) - 1, n_noise, n - n_noise, round(n_noise / mean_span)))
    noise_len = _partition(n_noise, n_spans, rng)
    keep_len = _partition(n - n_noise + 2, n_spans + 1, rng)  # kept runs around the spans: the two ends may be empty
    keep_len[0] -= 1
    keep_len[-1] -= 1
    inp, tgt, i = [], [], 0
    for k in range(n_spans):
        inp += ids[i : i + keep_len[k]]
        i += keep_len[k]
        inp.append(sentinels[k])
        tgt += [sentinels[k], *ids[i : i + noise_len[k]]]
        i += noise_len[k]
    inp += ids[i:]
    tgt.append(sentinels[n_spans])
    return inp, tgt


def pack_lines(token_lines: list[list[int]], max_len: int, rng: random.Random) -> list[list[int]]:
    """Concatenate tokenised lines into chunks of at most ``max_len`` tokens (line boundaries kept)."""
    order = list(range(len(token_lines)))
    rng.shuffle(order)
    chunks, cur = [], []
    for i in order:
        line = token_lines[i][:max_len]
        if cur and len(cur) + len(line) > max_len:
            chunks.append(cur)
            cur = []
        cur = cur + line
    if cur:
        chunks.append(cur)
    return chunks


def sentinel_ids(tokenizer, count: int) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(count)])
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise ValueError(f"the tokenizer lacks the first {count} <extra_id_N> sentinels")
    return ids


def as_tensor(rows: list[list[int]], pad: int) -> torch.Tensor:
    """Right-padded (N, max_len) long tensor."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out
