"""The datasets of the recipe: where their rows come from, how they are formatted and split,
and which metric scores them.

Source tasks (the paper's 6): mnli, qnli, qqp, sst2, squad, record.
Target tasks: GLUE (mnli qqp qnli sst2 stsb mrpc rte cola), SuperGLUE (multirc boolq wic wsc cb),
MRQA (nq hotpotqa searchqa newsqa), others (winogrande yelp scitail paws).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import formats as F


@dataclass(frozen=True)
class SplitRule:
    """The paper's split protocol (ATTEMPT's ``split_validation_test``):

    * ``halve_validation`` (small sets with a hidden test): train stays; the validation split,
      shuffled with the seed, gives its first half to dev and the rest to test;
    * ``carve_train`` (large sets): the shuffled train gives its first ``dev_size`` (1000) rows
      to dev, the rest stay train; the raw ``test`` split (validation unless said) is the test;
    * ``given``: the raw splits named in ``raw`` are used as they are.
    """

    kind: str
    raw: Mapping[str, str]  # our role (train / validation / dev / test) -> raw split name

    def raw_splits(self) -> list[str]:
        return list(dict.fromkeys(self.raw.values()))


HALVE = SplitRule("halve_validation", {"train": "train", "validation": "validation"})
CARVE = SplitRule("carve_train", {"train": "train", "test": "validation"})


@dataclass(frozen=True)
class Spec:
    name: str  # our task name (a valid store task name)
    benchmark: str  # glue | superglue | mrqa | others | source (squad, record: source tasks only)
    hf: str  # the Hugging Face dataset (and config) whose field names the rows use
    build: Callable  # (row, where) -> input text
    kind: str  # classification | regression | qa
    metric: str  # accuracy | f1_accuracy | mcc | correlation | cb | multirc | qa
    split: SplitRule
    labels: tuple[str, ...] | None = None  # ClassLabel names, in the dataset's order
    verbal: tuple[str, ...] | None = None  # label_style=names, when the ClassLabel names are digits
    label_field: str | tuple[str, ...] = "label"  # alternatives are tried in order
    string_labels: Mapping[str, int] = field(default_factory=dict)  # raw string label -> index
    group: Callable | None = None  # MultiRC: (row, where) -> question group
    pad_answers: bool = False
    one_row_per_answer: bool = False  # ReCoRD training rows
    max_input_tokens: int = 256
    subset: str | None = None  # MRQA: the value of the `subset` field in the combined `mrqa` dataset

    @property
    def names(self) -> tuple[str, ...]:
        return self.verbal or self.labels


def _labels(*names: str) -> dict:
    """ClassLabel names; raw string labels are accepted when they are words (not digits)."""
    strings = {} if any(n.isdigit() for n in names) else {n: i for i, n in enumerate(names)}
    return {"labels": names, "string_labels": strings}


def _cls(name, benchmark, hf, build, labels: dict, metric="accuracy", split=HALVE, **kw) -> Spec:
    return Spec(name, benchmark, hf, build, "classification", metric, split, **labels, **kw)


def _qa(name, benchmark, hf, subset=None, **kw) -> Spec:
    return Spec(
        name,
        benchmark,
        hf,
        F.qa_input(name),
        "qa",
        "qa",
        CARVE,
        label_field="answers",
        pad_answers=True,
        max_input_tokens=512,
        subset=subset,
        **kw,
    )


_NLI3 = _labels("entailment", "neutral", "contradiction")
_NLI2 = _labels("entailment", "not_entailment")
_BOOL = _labels("False", "True")
P = F.pairs

SPECS = [
    # GLUE
    _cls(
        "mnli",
        "glue",
        "glue/mnli",
        P("mnli", "premise", "hypothesis"),
        _NLI3,
        split=SplitRule("given", {"train": "train", "dev": "validation_mismatched", "test": "validation_matched"}),
    ),
    _cls(
        "qqp",
        "glue",
        "glue/qqp",
        P("qqp", "question1", "question2"),
        _labels("not_duplicate", "duplicate"),
        metric="f1_accuracy",
        split=CARVE,
    ),
    _cls("qnli", "glue", "glue/qnli", P("qnli", "question", "sentence"), _NLI2, split=CARVE),
    _cls("sst2", "glue", "glue/sst2", P("sst2", "sentence"), _labels("negative", "positive"), split=CARVE),
    Spec("stsb", "glue", "glue/stsb", P("stsb", "sentence1", "sentence2"), "regression", "correlation", HALVE),
    _cls(
        "mrpc",
        "glue",
        "glue/mrpc",
        P("mrpc", "sentence1", "sentence2"),
        _labels("not_equivalent", "equivalent"),
        metric="f1_accuracy",
    ),
    _cls("rte", "glue", "glue/rte", P("rte", "sentence1", "sentence2"), _NLI2),
    _cls("cola", "glue", "glue/cola", P("cola", "sentence"), _labels("unacceptable", "acceptable"), metric="mcc"),
    # SuperGLUE
    _cls(
        "multirc",
        "superglue",
        "super_glue/multirc",
        F.multirc_input,
        _BOOL,
        metric="multirc",
        group=F.multirc_group,
        max_input_tokens=386,
    ),
    _cls("boolq", "superglue", "super_glue/boolq", P("boolq", "question", "passage"), _BOOL, max_input_tokens=386),
    _cls("wic", "superglue", "super_glue/wic", P("wic", "sentence1", "sentence2", "word"), _BOOL),
    _cls("wsc", "superglue", "super_glue/wsc.fixed", F.wsc_input, _BOOL),
    _cls(
        "cb",
        "superglue",
        "super_glue/cb",
        P("cb", "premise", "hypothesis"),
        _labels("entailment", "contradiction", "neutral"),
        metric="cb",
    ),
    # the other two source tasks
    _qa("squad", "source", "squad"),
    Spec(
        "record",
        "source",
        "super_glue/record",
        F.record_input,
        "qa",
        "qa",
        CARVE,
        label_field="answers",
        one_row_per_answer=True,
        max_input_tokens=512,
    ),
    # MRQA 2019 (the `mrqa` dataset filtered by `subset`, or one lucadiliello/* dataset per subset)
    _qa(
        "nq",
        "mrqa",
        "mrqa (subset NaturalQuestionsShort) or lucadiliello/naturalquestionsshortqa",
        subset="NaturalQuestionsShort",
    ),
    _qa("hotpotqa", "mrqa", "mrqa (subset HotpotQA) or lucadiliello/hotpotqa", subset="HotpotQA"),
    _qa("searchqa", "mrqa", "mrqa (subset SearchQA) or lucadiliello/searchqa", subset="SearchQA"),
    _qa("newsqa", "mrqa", "mrqa (subset NewsQA) or lucadiliello/newsqa", subset="NewsQA"),
    # others
    _cls(
        "winogrande",
        "others",
        "winogrande/winogrande_xl",
        P("winogrande", "sentence", "option1", "option2"),
        {"labels": ("1", "2"), "string_labels": {"1": 0, "2": 1}},
        label_field="answer",
        split=CARVE,
    ),
    _cls(
        "yelp",
        "others",
        "yelp_polarity",
        F.yelp_input,
        _labels("1", "2"),
        verbal=("negative", "positive"),
        split=SplitRule("carve_train", {"train": "train", "test": "test"}),
    ),
    _cls(
        "scitail",
        "others",
        "scitail/snli_format (or tsv_format)",
        F.scitail_input,
        {"labels": ("entailment", "neutral"), "string_labels": {"entailment": 0, "neutral": 1, "entails": 0}},
        label_field=("gold_label", "label"),
    ),
    _cls(
        "paws",
        "others",
        "paws/labeled_final",
        P("paws", "sentence1", "sentence2"),
        _labels("0", "1"),
        verbal=("not_paraphrase", "paraphrase"),
        split=SplitRule("given", {"train": "train", "dev": "validation", "test": "test"}),
    ),
]
DATASETS: dict[str, Spec] = {s.name: s for s in SPECS}

SOURCES = ("mnli", "qnli", "qqp", "sst2", "squad", "record")
BENCHMARKS = {
    "glue": ("mnli", "qqp", "qnli", "sst2", "stsb", "mrpc", "rte", "cola"),
    "superglue": ("multirc", "boolq", "wic", "wsc", "cb"),
    "mrqa": ("nq", "hotpotqa", "searchqa", "newsqa"),
    "others": ("winogrande", "yelp", "scitail", "paws"),
}
TARGETS = tuple(n for names in BENCHMARKS.values() for n in names)


def get_spec(name: str) -> Spec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]
