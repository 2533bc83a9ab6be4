"""The real-data recipe (lab/glue): formats, split protocol, metrics, prepare and evaluate on
hand-written fixture rows with the Hugging Face field names (no dataset or model download)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lab.glue import evaluate as ev
from lab.glue import metrics as M
from lab.glue.formats import format_row, target_labels
from lab.glue.prepare import main as prepare_main
from lab.glue.prepare import read_manifest
from lab.glue.promote import main as promote_main
from lab.glue.promote import promote
from lab.glue.registry import BENCHMARKS, DATASETS, SOURCES, TARGETS, SplitRule, get_spec
from lab.glue.splits import permutation, split_rows
from lab.glue.text import pad_punctuation, stsb_target
from mpt_core import Family, Task
from prompts_store import DirectoryStore

# ---------------------------------------------------------------- fixture rows (HF field names)

WSC_TROPHY = {
    "text": "The trophy doesn't fit into the brown suitcase because it is too large.",
    "span1_index": 1,
    "span1_text": "trophy",
    "span2_index": 9,
    "span2_text": "it",
    "idx": 0,
    "label": 1,
}
WSC_BEFORE = {
    "text": "When he arrived, John was tired.",
    "span1_index": 3,
    "span1_text": "John",
    "span2_index": 1,
    "span2_text": "he",
    "idx": 1,
    "label": 1,
}
MULTIRC = {
    "paragraph": "<b>Sent 1: </b>Sam went home.<br><b>Sent 2: </b>He slept.<br>",
    "question": "Where did Sam go?",
    "answer": "home",
    "idx": {"paragraph": 3, "question": 7, "answer": 0},
    "label": 1,
}
RECORD = {
    "passage": "The Broncos won.\n@highlight\nDenver beat Carolina\n@highlight\nMVP: Von Miller",
    "query": "@placeholder won Super Bowl 50.",
    "entities": ["Broncos", "Denver", "Carolina"],
    "answers": ["Broncos", "Denver"],
    "idx": {"passage": 0, "query": 0},
}
SQUAD = {
    "id": "56be4db0acb8001400a502ec",
    "title": "Super_Bowl_50",
    "question": "Who won Super Bowl 50?",
    "context": "The Denver Broncos (AFC) won.",
    "answers": {"text": ["Denver Broncos", "the U.S. Broncos"], "answer_start": [4, 0]},
}
NQ = {
    "subset": "NaturalQuestionsShort",
    "qid": "q1",
    "question": "where is the eiffel tower",
    "context": "<P> The Eiffel Tower is in Paris. </P>",
    "answers": ["Paris", "Paris, France"],
}

RECORD_INPUT = (
    "record query: @placeholder won Super Bowl 50. entities: Broncos, Denver, Carolina "
    "passage: The Broncos won. Denver beat Carolina. MVP: Von Miller"
)
SQUAD_INPUT = "squad question: Who won Super Bowl 50 ? context: The Denver Broncos ( AFC ) won ."

# (dataset, raw row, split, label style, expected examples)
CASES = [
    (
        "cola",
        {"sentence": "The sailors rode the breeze clear of the rocks.", "label": 1, "idx": 0},
        "train",
        "ids",
        [{"input": "cola sentence: The sailors rode the breeze clear of the rocks.", "target": "1"}],
    ),
    (
        "cola",
        {"sentence": "They drank the pub.", "label": 0, "idx": 1},
        "test",
        "names",
        [{"input": "cola sentence: They drank the pub.", "target": "unacceptable"}],
    ),
    (
        "sst2",
        {"sentence": "hide new secretions from the parental units ", "label": 0, "idx": 0},
        "train",
        "names",
        [{"input": "sst2 sentence: hide new secretions from the parental units ", "target": "negative"}],
    ),
    (
        "sst2",
        {"sentence": "a gorgeous film", "label": 1, "idx": 1},
        "train",
        "ids",
        [{"input": "sst2 sentence: a gorgeous film", "target": "1"}],
    ),
    (
        "mrpc",
        {
            "sentence1": "Amrozi accused his brother .",
            "sentence2": "He called his brother a liar .",
            "label": 1,
            "idx": 0,
        },
        "train",
        "names",
        [
            {
                "input": "mrpc sentence1: Amrozi accused his brother . sentence2: He called his brother a liar .",
                "target": "equivalent",
            }
        ],
    ),
    (
        "mrpc",
        {"sentence1": "Yes .", "sentence2": "No .", "label": 0, "idx": 1},
        "dev",
        "ids",
        [{"input": "mrpc sentence1: Yes . sentence2: No .", "target": "0"}],
    ),
    (
        "qqp",
        {
            "question1": "How is the life of a math student?",
            "question2": "How do I learn Japanese?",
            "label": 0,
            "idx": 0,
        },
        "train",
        "names",
        [
            {
                "input": "qqp question1: How is the life of a math student? question2: How do I learn Japanese?",
                "target": "not_duplicate",
            }
        ],
    ),
    (
        "qqp",
        {"question1": "Why is the sky blue?", "question2": "What makes the sky blue?", "label": 1, "idx": 1},
        "train",
        "ids",
        [{"input": "qqp question1: Why is the sky blue? question2: What makes the sky blue?", "target": "1"}],
    ),
    (
        "stsb",
        {"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off.", "label": 5.0, "idx": 0},
        "train",
        "names",
        [{"input": "stsb sentence1: A plane is taking off. sentence2: An air plane is taking off.", "target": "5.0"}],
    ),
    (
        "stsb",
        {"sentence1": "A man plays.", "sentence2": "A woman sings.", "label": 0.3, "idx": 1},
        "test",
        "ids",
        [{"input": "stsb sentence1: A man plays. sentence2: A woman sings.", "target": "0.4"}],
    ),
    (
        "mnli",
        {"premise": "The cat sat on the mat.", "hypothesis": "A cat is sitting.", "label": 0, "idx": 0},
        "train",
        "ids",
        [{"input": "mnli premise: The cat sat on the mat. hypothesis: A cat is sitting.", "target": "0"}],
    ),
    (
        "mnli",
        {"premise": "He left early.", "hypothesis": "He stayed all night.", "label": 2, "idx": 1},
        "test",
        "names",
        [{"input": "mnli premise: He left early. hypothesis: He stayed all night.", "target": "contradiction"}],
    ),
    (
        "mnli",
        {"premise": "She reads.", "hypothesis": "She reads novels.", "label": 1, "idx": 2},
        "dev",
        "names",
        [{"input": "mnli premise: She reads. hypothesis: She reads novels.", "target": "neutral"}],
    ),
    (
        "qnli",
        {"question": "When did the war end?", "sentence": "The war ended in 1945.", "label": 0, "idx": 0},
        "train",
        "names",
        [{"input": "qnli question: When did the war end? sentence: The war ended in 1945.", "target": "entailment"}],
    ),
    (
        "qnli",
        {"question": "Who wrote it?", "sentence": "It is long.", "label": 1, "idx": 1},
        "train",
        "ids",
        [{"input": "qnli question: Who wrote it? sentence: It is long.", "target": "1"}],
    ),
    (
        "rte",
        {"sentence1": "No weapons were found.", "sentence2": "Weapons were found.", "label": 1, "idx": 0},
        "train",
        "names",
        [{"input": "rte sentence1: No weapons were found. sentence2: Weapons were found.", "target": "not_entailment"}],
    ),
    (
        "rte",
        {"sentence1": "Paris is in France.", "sentence2": "Paris is French.", "label": 0, "idx": 1},
        "test",
        "ids",
        [{"input": "rte sentence1: Paris is in France. sentence2: Paris is French.", "target": "0"}],
    ),
    (
        "boolq",
        {
            "question": "do iran and afghanistan speak the same language",
            "passage": "Persian is spoken in both.",
            "idx": 0,
            "label": 1,
        },
        "train",
        "names",
        [
            {
                "input": "boolq question: do iran and afghanistan speak the same language passage: Persian is spoken in both.",
                "target": "True",
            }
        ],
    ),
    (
        "boolq",
        {"question": "is the sun cold", "passage": "The sun is hot.", "idx": 1, "label": 0},
        "test",
        "ids",
        [{"input": "boolq question: is the sun cold passage: The sun is hot.", "target": "0"}],
    ),
    (
        "cb",
        {"premise": "It was raining.", "hypothesis": "It was dry.", "idx": 0, "label": 1},
        "train",
        "names",
        [{"input": "cb premise: It was raining. hypothesis: It was dry.", "target": "contradiction"}],
    ),
    (
        "cb",
        {"premise": "It was raining.", "hypothesis": "It was cold.", "idx": 1, "label": 2},
        "train",
        "ids",
        [{"input": "cb premise: It was raining. hypothesis: It was cold.", "target": "2"}],
    ),
    (
        "wic",
        {
            "word": "place",
            "sentence1": "Come over to my place.",
            "sentence2": "There is no place for doubt.",
            "start1": 15,
            "start2": 12,
            "end1": 20,
            "end2": 17,
            "idx": 0,
            "label": 0,
        },
        "train",
        "names",
        [
            {
                "input": "wic sentence1: Come over to my place. sentence2: There is no place for doubt. word: place",
                "target": "False",
            }
        ],
    ),
    (
        "wsc",
        WSC_TROPHY,
        "train",
        "ids",
        [
            {
                "input": "wsc text: The * trophy * doesn't fit into the brown suitcase because # it # is too large.",
                "target": "1",
            }
        ],
    ),
    (
        "wsc",
        WSC_BEFORE,
        "test",
        "names",
        [{"input": "wsc text: When # he # arrived, * John * was tired.", "target": "True"}],
    ),
    (
        "wsc",
        {**WSC_TROPHY, "span1_index": 5, "span1_text": "the brown suitcase", "label": 0},
        "train",
        "names",
        [
            {
                "input": "wsc text: The trophy doesn't fit into * the brown suitcase * because # it # is too large.",
                "target": "False",
            }
        ],
    ),
    (
        "multirc",
        MULTIRC,
        "train",
        "ids",
        [
            {
                "input": "multirc question: Where did Sam go? answer: home paragraph: Sent 1: Sam went home. Sent 2: He slept. ",
                "target": "1",
            }
        ],
    ),
    (
        "multirc",
        MULTIRC,
        "test",
        "names",
        [
            {
                "input": "multirc question: Where did Sam go? answer: home paragraph: Sent 1: Sam went home. Sent 2: He slept. ",
                "target": "True",
                "group": "3-7",
            }
        ],
    ),
    (
        "record",
        RECORD,
        "train",
        "ids",
        [{"input": RECORD_INPUT, "target": "Broncos"}, {"input": RECORD_INPUT, "target": "Denver"}],
    ),
    ("record", RECORD, "test", "ids", [{"input": RECORD_INPUT, "target": "Broncos", "answers": ["Broncos", "Denver"]}]),
    ("record", {**RECORD, "answers": []}, "train", "ids", []),
    ("squad", SQUAD, "train", "ids", [{"input": SQUAD_INPUT, "target": "Denver Broncos"}]),
    (
        "squad",
        SQUAD,
        "dev",
        "ids",
        [{"input": SQUAD_INPUT, "target": "Denver Broncos", "answers": ["Denver Broncos", "the U . S . Broncos"]}],
    ),
    (
        "nq",
        NQ,
        "train",
        "ids",
        [
            {
                "input": "nq question: where is the eiffel tower context: < P > The Eiffel Tower is in Paris . < / P >",
                "target": "Paris",
            }
        ],
    ),
    (
        "nq",
        NQ,
        "test",
        "ids",
        [
            {
                "input": "nq question: where is the eiffel tower context: < P > The Eiffel Tower is in Paris . < / P >",
                "target": "Paris",
                "answers": ["Paris", "Paris , France"],
            }
        ],
    ),
    (
        "hotpotqa",
        {
            "key": "k1",
            "question": "Which band formed first?",
            "context": "[PAR] [TLE] Muse [SEP] Muse formed in 1994.",
            "answers": ["Muse"],
        },
        "train",
        "ids",
        [
            {
                "input": "hotpotqa question: Which band formed first ? "
                "context: [ PAR ] [ TLE ] Muse [ SEP ] Muse formed in 1994 .",
                "target": "Muse",
            }
        ],
    ),
    (
        "newsqa",
        {"question": "Who was arrested?", "context": "Police arrested John Doe on Monday.", "answers": ["John Doe"]},
        "test",
        "names",
        [
            {
                "input": "newsqa question: Who was arrested ? context: Police arrested John Doe on Monday .",
                "target": "John Doe",
                "answers": ["John Doe"],
            }
        ],
    ),
    (
        "searchqa",
        {
            "question": "This 'Father of Medicine' was Greek",
            "context": "[DOC] Hippocrates was a Greek physician.",
            "answers": ["Hippocrates"],
        },
        "train",
        "ids",
        [
            {
                "input": "searchqa question: This ' Father of Medicine ' was Greek "
                "context: [ DOC ] Hippocrates was a Greek physician .",
                "target": "Hippocrates",
            }
        ],
    ),
    (
        "winogrande",
        {
            "sentence": "Sarah was a better surgeon than Maria so _ got the harder cases.",
            "option1": "Sarah",
            "option2": "Maria",
            "answer": "1",
        },
        "train",
        "ids",
        [
            {
                "input": "winogrande sentence: Sarah was a better surgeon than Maria so _ got the harder cases. "
                "option1: Sarah option2: Maria",
                "target": "0",
            }
        ],
    ),
    (
        "winogrande",
        {
            "sentence": "The ball broke the table because _ was fragile.",
            "option1": "ball",
            "option2": "table",
            "answer": "2",
        },
        "test",
        "names",
        [
            {
                "input": "winogrande sentence: The ball broke the table because _ was fragile. option1: ball option2: table",
                "target": "2",
            }
        ],
    ),
    (
        "yelp",
        {"text": "Great food, friendly staff!", "label": 1},
        "train",
        "names",
        [{"input": "yelp sentence: Great food, friendly staff!", "target": "positive"}],
    ),
    (
        "yelp",
        {"text": "Cold fries.", "label": 0},
        "test",
        "ids",
        [{"input": "yelp sentence: Cold fries.", "target": "0"}],
    ),
    (
        "scitail",
        {
            "sentence1": "Plants need light.",
            "sentence2": "Light is needed by plants.",
            "gold_label": "entailment",
            "sentence1_parse": "(ROOT ...)",
            "annotator_labels": ["entailment"],
        },
        "train",
        "ids",
        [{"input": "scitail premise: Plants need light. hypothesis: Light is needed by plants.", "target": "0"}],
    ),
    (
        "scitail",
        {"premise": "Iron rusts.", "hypothesis": "Rust is a metal.", "label": "neutral"},
        "train",
        "names",
        [{"input": "scitail premise: Iron rusts. hypothesis: Rust is a metal.", "target": "neutral"}],
    ),
    (
        "scitail",
        {"premise": "Ice melts.", "hypothesis": "Ice can melt.", "label": "entails"},
        "test",
        "names",
        [{"input": "scitail premise: Ice melts. hypothesis: Ice can melt.", "target": "entailment"}],
    ),
    (
        "paws",
        {"id": 1, "sentence1": "The cat chased the dog.", "sentence2": "The dog chased the cat.", "label": 0},
        "train",
        "names",
        [
            {
                "input": "paws sentence1: The cat chased the dog. sentence2: The dog chased the cat.",
                "target": "not_paraphrase",
            }
        ],
    ),
    (
        "paws",
        {"id": 2, "sentence1": "He came in 1990.", "sentence2": "In 1990 he came.", "label": 1},
        "test",
        "ids",
        [{"input": "paws sentence1: He came in 1990. sentence2: In 1990 he came.", "target": "1"}],
    ),
]


@pytest.mark.parametrize("name,row,split,style,expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_formats(name, row, split, style, expected):
    assert format_row(get_spec(name), row, split, style) == expected


def test_every_dataset_has_a_fixture_and_the_registry_is_consistent():
    assert {c[0] for c in CASES} == set(DATASETS)
    assert set(SOURCES) | set(TARGETS) == set(DATASETS)
    assert len(SOURCES) == 6 and sum(map(len, BENCHMARKS.values())) == 21
    assert target_labels(get_spec("mnli"), "names") == ["entailment", "neutral", "contradiction"]
    assert target_labels(get_spec("cb"), "names") == ["entailment", "contradiction", "neutral"]
    assert target_labels(get_spec("mnli"), "ids") == ["0", "1", "2"]
    assert target_labels(get_spec("squad"), "ids") is None


def test_format_errors_name_the_bad_value():
    with pytest.raises(ValueError, match=r"unknown dataset 'glue'; known: mnli, qqp.*paws"):
        get_spec("glue")
    rte = get_spec("rte")
    with pytest.raises(ValueError, match=r"no field 'sentence2' \(fields: \['label', 'sentence1'\]\)"):
        format_row(rte, {"sentence1": "a", "label": 0}, "train")
    with pytest.raises(ValueError, match="label -1 marks an unlabelled row"):
        format_row(rte, {"sentence1": "a", "sentence2": "b", "label": -1}, "train")
    with pytest.raises(ValueError, match=r"label 2 is out of range 0..1 \['entailment', 'not_entailment'\]"):
        format_row(rte, {"sentence1": "a", "sentence2": "b", "label": 2}, "train")
    assert format_row(rte, {"sentence1": "a", "sentence2": "b", "label": "not_entailment"}, "train")[0]["target"] == "1"
    with pytest.raises(ValueError, match=r"label '1' is not an int 0..1 \(classes: \['1', '2'\]\)"):
        format_row(get_spec("yelp"), {"text": "ok", "label": "1"}, "train")  # digit names are ambiguous
    with pytest.raises(ValueError, match=r"wsc train row: span2_text 'it' is not at word 8 of \"The trophy doesn't"):
        format_row(get_spec("wsc"), {**WSC_TROPHY, "span2_index": 8}, "train")
    with pytest.raises(ValueError, match=r"stsb test row: label -1: STS-B score -1.0 is outside \[0, 5\]"):
        format_row(get_spec("stsb"), {"sentence1": "a", "sentence2": "b", "label": -1}, "test")
    with pytest.raises(ValueError, match=r"label_style 'words' is not one of \('ids', 'names'\)"):
        format_row(rte, {"sentence1": "a", "sentence2": "b", "label": 0}, "train", "words")


def test_text_helpers():
    assert pad_punctuation('François (b. 1990) said: "hi"') == 'François ( b . 1990 ) said : " hi "'
    assert [stsb_target(x) for x in (0.0, 3.75, 2.5, 2.6, 4.99, 5.0)] == ["0.0", "3.8", "2.4", "2.6", "5.0", "5.0"]
    with pytest.raises(ValueError, match="outside"):
        stsb_target(5.2)


# ---------------------------------------------------------------- split protocol


def test_halve_validation_is_seeded_disjoint_and_attempts_permutation():
    val = [{"i": i} for i in range(11)]
    raw = {"train": [{"t": 0}], "validation": val}
    rule = get_spec("rte").split
    a, b = split_rows(rule, raw, seed=42), split_rows(rule, raw, seed=42)
    assert a == b and a["train"] == raw["train"]
    assert len(a["dev"]) == 5 and len(a["test"]) == 6
    ids = [r["i"] for r in a["dev"] + a["test"]]
    assert sorted(ids) == list(range(11))  # disjoint and complete
    perm = permutation(11, 42)
    assert [r["i"] for r in a["dev"]] == perm[:5]  # ATTEMPT: indices[:len // 2] -> dev
    assert split_rows(rule, raw, seed=1)["dev"] != a["dev"]


def test_carve_train_and_given_rules():
    train = [{"i": i} for i in range(10)]
    out = split_rows(get_spec("qnli").split, {"train": train, "validation": [{"v": 0}]}, seed=42, dev_size=3)
    assert [r["i"] for r in out["dev"]] == permutation(10, 42)[:3]
    assert sorted(r["i"] for r in out["train"] + out["dev"]) == list(range(10))
    assert out["test"] == [{"v": 0}]
    with pytest.raises(ValueError, match="too few to carve a dev split of 1000"):
        split_rows(get_spec("qnli").split, {"train": train, "validation": []})
    mnli = {"train": [1], "validation_matched": [2], "validation_mismatched": [3]}
    assert split_rows(get_spec("mnli").split, mnli) == {"train": [1], "dev": [3], "test": [2]}
    with pytest.raises(ValueError, match=r"raw split\(s\) \['validation_mismatched'\] .* missing"):
        split_rows(get_spec("mnli").split, {"train": [], "validation_matched": []})
    with pytest.raises(ValueError, match="unknown split rule"):
        split_rows(SplitRule("fancy", {"train": "train"}), {"train": []})


def test_multirc_halves_keep_question_groups_together():
    rows = [
        {**MULTIRC, "idx": {"paragraph": p, "question": q, "answer": a}}
        for p, q, n in [(0, 0, 3), (0, 1, 2), (1, 2, 4), (1, 3, 1), (2, 4, 2)]
        for a in range(n)
    ]
    spec = get_spec("multirc")
    out = split_rows(spec.split, {"train": [], "validation": rows}, seed=42, group=spec.group)
    dev_q = {r["idx"]["question"] for r in out["dev"]}
    test_q = {r["idx"]["question"] for r in out["test"]}
    assert len(dev_q) == 2 and len(test_q) == 3 and not dev_q & test_q
    assert len(out["dev"]) + len(out["test"]) == len(rows)


# ---------------------------------------------------------------- metrics (hand-computed)


def test_classification_metrics():
    assert M.accuracy(["1", " 0", "1", "x"], ["1", "0", "0", "0"]) == 50.0
    # positive "1": tp 1 (row 0), fp 1 (row 2), invalid row 3 with gold 1 -> flipped to 0 -> fn 1
    assert M.binary_f1(["1", "0", "1", "yes"], ["1", "0", "0", "1"], ["0", "1"]) == pytest.approx(50.0)
    assert M.binary_f1(["0", "0"], ["0", "0"], ["0", "1"]) == 0.0
    # CB: per-class F1 e: 2/3 (tp1 fp0 fn1), c: 2/3 (tp1 fp1 fn0), n: 0 -> mean 4/9
    assert M.macro_f1(["e", "c", "c"], ["e", "c", "e"], ["e", "c", "n"]) == pytest.approx(100 * 4 / 9)


def test_matthews_hand_values_and_constant_prediction():
    # tp 1, fn 1, tn 2, fp 0: (1*2 - 0*1) / sqrt(1 * 2 * 2 * 3)
    assert M.matthews(["1", "0", "0", "0"], ["1", "1", "0", "0"]) == pytest.approx(100 * 2 / math.sqrt(12))
    assert M.matthews(["1", "1", "1", "1"], ["1", "0", "1", "0"]) == 0.0  # constant prediction: undefined -> 0
    assert M.matthews(["0", "1", "1", "0"], ["1", "0", "0", "1"]) == pytest.approx(-100.0)
    # an invalid prediction is a third class (sklearn's multiclass MCC): n=4, c=2, t={1:3,0:1}, p={1:1,0:2,x:1}
    expected = (2 * 4 - (1 * 3 + 2 * 1)) / math.sqrt((16 - (1 + 4 + 1)) * (16 - (9 + 1)))
    assert M.matthews(["1", "x", "0", "0"], ["1", "1", "0", "1"]) == pytest.approx(100 * expected)


def test_correlations_and_stsb_unparsable():
    assert M.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(100 * 3 / math.sqrt(28 / 3))
    assert M.spearman([1, 2, 3], [1, 2, 4]) == pytest.approx(100.0)
    assert M.ranks([1, 2, 2, 3]) == [1, 2.5, 2.5, 4]
    assert M.pearson([2, 2, 2], [1, 2, 3]) == 0.0
    out = M.score_correlation(["1.0", "abc", "3.0"], ["1.0", "2.0", "3.0"])  # "abc" counts as -1
    assert out["pearson"] == pytest.approx(50.0) and out["spearman"] == pytest.approx(50.0)
    assert out["unparsable"] == 1 and out["score"] == out["pearson"]


def test_multirc_grouping():
    golds = ["1", "0", "1", "0", "1"]
    preds = ["1", "0", "1", "1", "1"]  # question a all right, question b one wrong
    groups = ["a", "a", "a", "b", "b"]
    out = M.score_multirc(preds, golds, groups, ["0", "1"])
    assert out["em"] == 50.0 and out["questions"] == 2
    assert out["f1a"] == pytest.approx(100 * 6 / 7) and out["score"] == out["f1a"]  # tp 3 fp 1 fn 0


def test_qa_max_over_gold_answers():
    out = M.score_qa(["Denver", "the Broncos!", "Carolina"], [["Broncos", "Denver"], ["Broncos"], ["Denver Broncos"]])
    assert out["em"] == pytest.approx(200 / 3) and out["f1"] == pytest.approx(200 / 3)
    out = M.score_qa(["Denver team"], [["Broncos", "Denver Broncos"]])  # best: F1 0.5 against "Denver Broncos"
    assert out["f1"] == pytest.approx(50.0) and out["em"] == 0.0


def test_score_rows_dispatch():
    rows = [{"input": "", "target": t} for t in ["1", "0", "1", "0"]]
    out = M.score_rows("f1_accuracy", ["1", "0", "0", "maybe"], rows, ["0", "1"])
    assert out["accuracy"] == 50.0 and out["score"] == 50.0 and out["invalid"] == 1
    assert out["f1"] == pytest.approx(50.0)  # tp 1, fn 1 (row 2), invalid row 3 (gold 0) flipped to 1: fp 1
    rows_qa = [{"input": "", "target": "a", "answers": ["a", "b"]}]
    assert M.score_rows("qa", ["b"], rows_qa, None)["em"] == 100.0
    with pytest.raises(ValueError, match="2 predictions for 4 gold rows"):
        M.score_rows("accuracy", ["1", "0"], rows, ["0", "1"])
    with pytest.raises(ValueError, match="question 'group'"):
        M.score_rows("multirc", ["1"] * 4, rows, ["0", "1"])


# ---------------------------------------------------------------- prepare and evaluate end to end


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def raw_root(tmp_path):
    root = tmp_path / "raw"
    pairs = [
        ("Paris is in France.", "Paris is French.", 0),
        ("No weapons were found.", "Weapons were found.", 1),
        ("It rained.", "It was wet.", 0),
        ("He ran.", "He sat.", 1),
        ("Cats purr.", "Cats make sounds.", 0),
        ("Snow is cold.", "Snow is hot.", 1),
    ]
    rte = [{"sentence1": a, "sentence2": b, "label": y, "idx": i} for i, (a, b, y) in enumerate(pairs)]
    _jsonl(root / "rte" / "train.jsonl", rte[:3])
    _jsonl(root / "rte" / "validation.jsonl", rte)
    stsb = [{"sentence1": f"s{i}", "sentence2": f"t{i}", "label": i * 0.8, "idx": i} for i in range(6)]
    _jsonl(root / "stsb" / "train.jsonl", stsb)
    _jsonl(root / "stsb" / "validation.jsonl", stsb)
    squad = [{**SQUAD, "id": str(i), "question": f"Who won game {i}?"} for i in range(5)]
    _jsonl(root / "squad" / "train.jsonl", squad)
    _jsonl(root / "squad" / "validation.jsonl", squad[:2])
    _jsonl(root / "mnli" / "train.jsonl", [CASES[10][1]])
    _jsonl(root / "mnli" / "validation_matched.jsonl", [CASES[11][1]])
    _jsonl(root / "mnli" / "validation_mismatched.jsonl", [CASES[12][1]])
    return root


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prepare_end_to_end(raw_root, tmp_path, capsys):
    out = tmp_path / "data"
    args = ["--raw", str(raw_root), "--out", str(out), "rte", "stsb", "mnli", "--label-style", "names"]
    assert prepare_main(args) == 0
    assert prepare_main(["--out", str(out), "--dev-size", "2", f"squad={raw_root / 'squad'}"]) == 0
    assert "rte         train 3  dev 3  test 3" in capsys.readouterr().out
    rte = {s: _read(out / "rte" / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert rte["train"][0] == {
        "input": "rte sentence1: Paris is in France. sentence2: Paris is French.",
        "target": "entailment",
    }
    assert not {r["input"] for r in rte["dev"]} & {r["input"] for r in rte["test"]}
    assert _read(out / "mnli" / "test.jsonl") == CASES[11][4]  # test = validation_matched
    squad = {s: _read(out / "squad" / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert [len(squad[s]) for s in ("train", "dev", "test")] == [3, 2, 2]
    assert squad["test"][0]["answers"] == ["Denver Broncos", "the U . S . Broncos"]
    assert "answers" not in squad["train"][0]
    manifest = read_manifest(out)["datasets"]
    assert sorted(manifest) == ["mnli", "rte", "squad", "stsb"]  # the second call added to the manifest
    assert manifest["rte"]["labels"] == ["entailment", "not_entailment"] and manifest["rte"]["seed"] == 42
    assert manifest["squad"]["split_rule"] == {
        "kind": "carve_train",
        "raw": {"train": "train", "test": "validation"},
        "dev_size": 2,
    }
    assert manifest["stsb"]["examples"] == {"train": 6, "dev": 3, "test": 3}
    first = (out / "rte" / "dev.jsonl").read_text()
    assert prepare_main(["--raw", str(raw_root), "--out", str(out), "rte", "--label-style", "names"]) == 0
    assert (out / "rte" / "dev.jsonl").read_text() == first  # seeded: the same split again
    assert not list(out.glob("*.tmp")) and not list(out.glob("*.old"))


def test_prepare_errors(raw_root, tmp_path, capsys):
    out = str(tmp_path / "data")
    assert prepare_main(["--raw", str(raw_root), "--out", out, "glue-rte"]) == 2
    assert "unknown dataset 'glue-rte'; known: mnli" in capsys.readouterr().err
    assert prepare_main(["--out", out, "rte"]) == 2
    assert "give rte=PATH or --raw ROOT" in capsys.readouterr().err
    assert prepare_main(["--raw", str(raw_root), "--out", out, "cola"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (raw_root / "rte" / "validation.jsonl").write_text('{"sentence1": "a"}\nnot json\n')
    assert prepare_main(["--raw", str(raw_root), "--out", out, "rte"]) == 2
    assert "validation.jsonl:2: not JSON" in capsys.readouterr().err


def test_evaluate_scores_prepared_rows_against_the_paper(raw_root, tmp_path):
    data = tmp_path / "data"
    assert prepare_main(["--raw", str(raw_root), "--out", str(data), "rte", "stsb"]) == 0

    def oracle(spec, rows):
        return [r["target"] for r in rows]

    results = ev.evaluate_datasets(data, ["rte", "stsb"], oracle, predictions_dir=tmp_path / "pred")
    assert results["rte"]["score"] == 100.0 and results["rte"]["n"] == 3
    assert results["stsb"]["pearson"] == pytest.approx(100.0)
    pred = _read(tmp_path / "pred" / "rte.jsonl")
    assert [p["prediction"] for p in pred] == [p["target"] for p in pred] and len(pred) == 3
    summary = ev.summarize(results)
    assert summary["datasets"]["rte"]["paper"] == 79.4
    assert summary["averages"]["glue"]["ours"] is None and "cola" in summary["averages"]["glue"]["missing"]
    table = ev.markdown(summary)
    assert "| rte | acc | 100.0 | 79.4 | +20.6 | 3 |" in table
    assert "**glue average** (missing: mnli, qqp, qnli, sst2, mrpc, cola)" in table
    full = ev.summarize({n: {"score": 80.0} for n in BENCHMARKS["superglue"]})
    assert full["averages"]["superglue"] == {"ours": 80.0, "paper": 74.1, "missing": []}
    with pytest.raises(ValueError, match=r"cola is not prepared .* \(prepared: \['rte', 'stsb'\]\)"):
        ev.evaluate_datasets(data, ["cola"], oracle)
    assert ev.expand(["superglue", "rte", "cb"]) == ["multirc", "boolq", "wic", "wsc", "cb", "rte"]


def test_promote_gathers_tasks_and_refuses_a_changed_shared_prompt(tmp_path):
    def scratch(path, shared, tasks):
        store = DirectoryStore(path)
        fam = Family("mpt", shared, {"d_model": 3})
        store.put_family(fam)
        for name, scale in tasks:
            store.put_task(Task(name, "mpt", torch.full((2, 1), scale), torch.ones(3, 1)))
        return store

    p_star = torch.arange(6.0).view(2, 3)
    scratch(tmp_path / "a", p_star, [("mnli", 1.0), ("rte-factors", 2.0)])
    scratch(tmp_path / "b", p_star, [("mnli", 1.0), ("cola-factors", 3.0)])
    dst = tmp_path / "results"
    assert promote_main(["--from", str(tmp_path / "a"), "--to", str(dst), "rte-factors"]) == 0
    assert promote_main(["--from", str(tmp_path / "b"), "--to", str(dst), "cola-factors"]) == 0
    store = DirectoryStore(dst)
    assert store.list_tasks() == ["cola-factors", "rte-factors"] and store.list_families() == ["mpt"]
    assert torch.equal(store.get_task("rte-factors").u, torch.full((2, 1), 2.0))
    assert promote_main(["--from", str(tmp_path / "a"), "--to", str(dst), "rte-factors"]) == 2  # exists
    scratch(tmp_path / "c", p_star + 1, [("wic-factors", 1.0)])
    with pytest.raises(ValueError, match=r"different shared prompt .* against it: \['cola-factors', 'rte-factors'\]"):
        promote(tmp_path / "c", dst, ["wic-factors"], overwrite=True)
