"""The lab's vocabulary: small hand-curated English lexicons with human-checkable attributes
(word polarity, noun category and a 1-9 size scale), so that a person can read a task's input and
check its answer. The seeded world (``world.py``) decides which words each task may use in which
split; nothing here is random."""

from __future__ import annotations

POSITIVE = (
    "good great excellent wonderful lovely amazing superb brilliant fantastic pleasant delightful perfect "
    "nice charming splendid marvelous terrific fabulous beautiful cheerful friendly tasty fresh elegant "
    "gorgeous graceful joyful magnificent outstanding impressive remarkable stunning sweet admirable "
    "enjoyable exciting inspiring glorious neat cozy"
).split()
NEGATIVE = (
    "bad awful terrible horrible dreadful poor nasty ugly boring dull rude disgusting unpleasant lousy "
    "miserable gloomy stale rotten broken dirty noisy annoying clumsy sloppy mediocre painful weak bland "
    "bitter cruel grim hideous shabby sour tedious useless wretched faulty greasy moldy"
).split()

# noun -> (category, size on a 1..9 scale: 1 = fits in a hand ... 9 = bigger than a house)
NOUNS: dict[str, tuple[str, int]] = {
    # animals
    "ant": ("animal", 1), "bee": ("animal", 1), "spider": ("animal", 1), "mouse": ("animal", 2),
    "frog": ("animal", 2), "bird": ("animal", 2), "rabbit": ("animal", 3), "cat": ("animal", 3),
    "duck": ("animal", 3), "fox": ("animal", 4), "dog": ("animal", 4), "sheep": ("animal", 5),
    "pig": ("animal", 5), "wolf": ("animal", 5), "deer": ("animal", 6), "lion": ("animal", 6),
    "tiger": ("animal", 6), "bear": ("animal", 7), "horse": ("animal", 7), "cow": ("animal", 7),
    "camel": ("animal", 7), "shark": ("animal", 8), "giraffe": ("animal", 8), "elephant": ("animal", 9),
    "whale": ("animal", 9),
    # food
    "pea": ("food", 1), "grape": ("food", 1), "nut": ("food", 1), "cherry": ("food", 1), "egg": ("food", 2),
    "apple": ("food", 2), "lemon": ("food", 2), "orange": ("food", 2), "carrot": ("food", 2),
    "banana": ("food", 2), "potato": ("food", 2), "bread": ("food", 3), "cheese": ("food", 3),
    "cake": ("food", 3), "pie": ("food", 3), "melon": ("food", 4), "pumpkin": ("food", 4),
    # vehicles
    "bicycle": ("vehicle", 5), "scooter": ("vehicle", 5), "canoe": ("vehicle", 6), "car": ("vehicle", 7),
    "boat": ("vehicle", 7), "tractor": ("vehicle", 7), "van": ("vehicle", 7), "bus": ("vehicle", 8),
    "truck": ("vehicle", 8), "train": ("vehicle", 9), "ship": ("vehicle", 9), "plane": ("vehicle", 9),
    # tools
    "needle": ("tool", 1), "pin": ("tool", 1), "key": ("tool", 1), "nail": ("tool", 1), "pen": ("tool", 1),
    "spoon": ("tool", 2), "knife": ("tool", 2), "hammer": ("tool", 2), "brush": ("tool", 2),
    "saw": ("tool", 3), "axe": ("tool", 3), "shovel": ("tool", 4), "ladder": ("tool", 5),
    # buildings
    "tent": ("building", 6), "hut": ("building", 7), "cabin": ("building", 7), "house": ("building", 8),
    "barn": ("building", 8), "church": ("building", 9), "tower": ("building", 9), "castle": ("building", 9),
    "school": ("building", 9), "stadium": ("building", 9),
    # plants
    "seed": ("plant", 1), "leaf": ("plant", 1), "flower": ("plant", 1), "moss": ("plant", 1),
    "fern": ("plant", 3), "cactus": ("plant", 4), "bush": ("plant", 5), "tree": ("plant", 8),
    "oak": ("plant", 8), "palm": ("plant", 8), "pine": ("plant", 8),
    # clothing
    "sock": ("clothing", 2), "hat": ("clothing", 2), "glove": ("clothing", 2), "shoe": ("clothing", 2),
    "tie": ("clothing", 2), "shirt": ("clothing", 3), "scarf": ("clothing", 3), "boot": ("clothing", 3),
    "coat": ("clothing", 4), "dress": ("clothing", 4),
    # instruments
    "whistle": ("instrument", 1), "flute": ("instrument", 3), "trumpet": ("instrument", 3),
    "violin": ("instrument", 4), "guitar": ("instrument", 4), "drum": ("instrument", 4),
    "cello": ("instrument", 5), "harp": ("instrument", 6), "piano": ("instrument", 6),
}
CATEGORIES = tuple(sorted({c for c, _ in NOUNS.values()}))
OWNABLE = ("animal", "vehicle", "tool", "instrument", "clothing")  # what a person can own in a scene

NAMES = (
    "anna ben carl dora emma finn gina hugo ida jack kate leo mia nina omar paul rosa sam tina uma vera "
    "will yara zoe alan bella chris diana eric fiona george hanna ivan julia kevin laura mark nora oscar "
    "petra quinn ruby simon tara victor wendy adam beth colin daisy elena frank grace henry iris james"
).split()
CITIES = (
    "paris rome london berlin madrid vienna prague oslo dublin lisbon athens cairo tokyo delhi lima quito "
    "sydney boston denver dallas chicago moscow warsaw zurich geneva milan naples venice seville porto"
).split()
JOBS = (
    "doctor teacher farmer baker pilot nurse painter singer writer lawyer driver cook tailor miner sailor "
    "judge dancer builder clerk guard"
).split()
NUMBER_WORDS = ("zero one two three four five six seven eight nine ten").split()


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def check_lexicon() -> None:
    """Invariants the task families rely on (run by the tests)."""
    words = POSITIVE + NEGATIVE + list(NOUNS) + list(NAMES) + list(CITIES) + list(JOBS)
    dup = {w for w in words if words.count(w) > 1}
    if dup:
        raise ValueError(f"words listed twice across lexicons: {sorted(dup)}")
    bad = {w: s for w, (_, s) in NOUNS.items() if not 1 <= s <= 9}
    if bad:
        raise ValueError(f"noun sizes outside 1..9: {bad}")
