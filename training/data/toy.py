"""``mpt data toy``: small generated text-to-text tasks for demos and tests.

Each task is a keyword classification with a textual template ("review: ... -> positive"),
enough for prompt tuning on a tiny random backbone to learn and for the pipeline to be shown
end to end. (The accuracy lab in bench/ holds the harder, held-out-word protocol.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

LEXICONS = {
    "polarity": (
        "review: the {a} film was {w}",
        {
            "positive": ["great", "wonderful", "excellent", "good", "happy", "love"],
            "negative": ["terrible", "awful", "boring", "bad", "sad", "angry"],
        },
    ),
    "animal": (
        "is a {w} an animal ?",
        {
            "yes": ["dog", "horse", "bird", "fish", "animal", "cat"],
            "no": ["tree", "rock", "river", "car", "paper", "door"],
        },
    ),
    "size": (
        "big or small : the {w}",
        {
            "big": ["mountain", "ocean", "earth", "country", "city", "ship"],
            "small": ["inch", "letter", "word", "note", "eye", "foot"],
        },
    ),
    "temperature": (
        "hot or cold : {w} {a}",
        {
            "hot": ["fire", "sun", "heat", "summer", "warm", "hot"],
            "cold": ["snow", "ice", "winter", "cold", "rain", "night"],
        },
    ),
}
FILLERS = ["one", "two", "old", "new", "long", "short", "first", "last", "real", "simple"]


def make_examples(task: str, n: int, rng: random.Random) -> list[dict]:
    template, lexicon = LEXICONS[task]
    out = []
    labels = sorted(lexicon)
    for _ in range(n):
        label = rng.choice(labels)
        text = template.format(w=rng.choice(lexicon[label]), a=rng.choice(FILLERS))
        out.append({"input": text, "target": label})
    return out


def write_toy_tasks(
    out: str | Path, seed: int = 0, n_train: int = 200, n_dev: int = 50, n_test: int = 50
) -> dict[str, str]:
    """Write every toy task under ``out/<task>/{train,dev,test}.jsonl``; returns name -> directory."""
    out = Path(out)
    dirs = {}
    for k, task in enumerate(sorted(LEXICONS)):
        rng = random.Random(seed * 1000 + k)
        d = out / task
        d.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
            rows = make_examples(task, n, rng)
            (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        dirs[task] = str(d)
    return dirs
