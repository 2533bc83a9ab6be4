"""Raw dataset rows (the Hugging Face ``datasets`` field names) -> text-to-text examples.

Inputs follow ATTEMPT (Asai et al., 2022), whose data code MPT builds on: the task name, then
``field: value`` pairs in ATTEMPT's order, e.g. ``mnli premise: ... hypothesis: ...``.
Targets (``label_style``):

* ``ids`` (default, the paper's): the class index of the dataset's ClassLabel feature as a
  string, ``"0"``, ``"1"``, ``"2"`` (ATTEMPT / MPT);
* ``names``: the ClassLabel names, e.g. ``entailment`` / ``neutral`` / ``contradiction`` (T5).

STS-B is T5's string regression (score rounded to 0.2). Question answering targets are the
first gold answer; evaluation rows keep every gold answer in ``answers``. ReCoRD gives one
training row per answer and one evaluation row per question. MultiRC evaluation rows carry
their question ``group`` for the grouped exact match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .text import mark_span, pad_punctuation, record_passage, remove_markup, stsb_target

LABEL_STYLES = ("ids", "names")
Row = Mapping[str, Any]


def field(row: Row, key: str, where: str) -> Any:
    if key not in row:
        raise ValueError(f"{where}: no field {key!r} (fields: {sorted(row)})")
    return row[key]


def text(row: Row, key: str, where: str) -> str:
    value = field(row, key, where)
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {key!r} should be a string, got {type(value).__name__} {value!r}")
    return value


def pairs(name: str, *keys: str) -> Callable[[Row, str], str]:
    """Input builder ``<name> k1: <row[k1]> k2: <row[k2]> ...``."""

    def build(row: Row, where: str) -> str:
        return " ".join([name] + [f"{k}: {text(row, k, where)}" for k in keys])

    return build


def wsc_input(row: Row, where: str) -> str:
    """WSC as T5 / ATTEMPT: ``*`` around the noun (span1), ``#`` around the pronoun (span2)."""
    t = text(row, "text", where)
    i1, i2 = int(field(row, "span1_index", where)), int(field(row, "span2_index", where))
    s1, s2 = text(row, "span1_text", where), text(row, "span2_text", where)
    for key, span, i in (("span1", s1, i1), ("span2", s2, i2)):
        try:
            mark_span(t, span, i, "")  # both spans are checked against the unmarked text
        except ValueError:
            raise ValueError(f"{where}: {key}_text {span!r} is not at word {i} of {t!r}") from None
    t = mark_span(t, s1, i1, "*")
    return f"wsc text: {mark_span(t, s2, i2 + 2 * (i1 < i2), '#')}"  # span1's marks added 2 words


def multirc_input(row: Row, where: str) -> str:
    q, a, p = (remove_markup(text(row, k, where)) for k in ("question", "answer", "paragraph"))
    return f"multirc question: {q} answer: {a} paragraph: {p}"


def record_input(row: Row, where: str) -> str:
    entities = field(row, "entities", where)
    if not isinstance(entities, list):
        raise ValueError(f"{where}: field 'entities' should be a list, got {entities!r}")
    passage = record_passage(text(row, "passage", where))
    return f"record query: {text(row, 'query', where)} entities: {', '.join(entities)} passage: {passage}"


def qa_input(name: str) -> Callable[[Row, str], str]:
    """SQuAD / MRQA as T5 / ATTEMPT: punctuation padded, ``<name> question: ... context: ...``."""

    def build(row: Row, where: str) -> str:
        question, context = (pad_punctuation(text(row, k, where)) for k in ("question", "context"))
        return f"{name} question: {question} context: {context}"

    return build


def yelp_input(row: Row, where: str) -> str:
    return f"yelp sentence: {text(row, 'text', where)}"


def scitail_input(row: Row, where: str) -> str:
    """SciTail ``snli_format`` (sentence1 / sentence2) or ``tsv_format`` (premise / hypothesis)."""
    if "sentence1" in row:
        premise, hypothesis = text(row, "sentence1", where), text(row, "sentence2", where)
    else:
        premise, hypothesis = text(row, "premise", where), text(row, "hypothesis", where)
    return f"scitail premise: {premise} hypothesis: {hypothesis}"


def answers_of(row: Row, key: str, where: str, pad: bool) -> list[str]:
    """Gold answers: a list of strings (ReCoRD, MRQA) or SQuAD's ``{"text": [...], ...}``."""
    value = field(row, key, where)
    if isinstance(value, Mapping):
        value = value.get("text")
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValueError(f"{where}: field {key!r} should be a list of answer strings, got {value!r}")
    return [pad_punctuation(a) for a in value] if pad else list(value)


def class_index(spec, row: Row, where: str) -> int:
    """The row's class index in the order of ``spec.labels`` (the ClassLabel order)."""
    keys = spec.label_field if isinstance(spec.label_field, tuple) else (spec.label_field,)
    value = field(row, next((k for k in keys if k in row), keys[0]), where)
    n = len(spec.labels)
    if isinstance(value, int) and not isinstance(value, bool):
        if value == -1:
            raise ValueError(f"{where}: label -1 marks an unlabelled row (a hidden test split?); use labelled splits")
        if 0 <= value < n:
            return value
        raise ValueError(f"{where}: label {value} is out of range 0..{n - 1} {list(spec.labels)}")
    if isinstance(value, str) and value in spec.string_labels:
        return spec.string_labels[value]
    accepted = f"an int 0..{n - 1}" + (f" or one of {sorted(spec.string_labels)}" if spec.string_labels else "")
    raise ValueError(f"{where}: label {value!r} is not {accepted} (classes: {list(spec.labels)})")


def verbalize(spec, index: int, label_style: str) -> str:
    if label_style == "ids":
        return str(index)
    if label_style == "names":
        return spec.names[index]
    raise ValueError(f"label_style {label_style!r} is not one of {LABEL_STYLES}")


def target_labels(spec, label_style: str) -> list[str] | None:
    """The targets a classification task can have, in class order; None for other tasks."""
    if spec.labels is None:
        return None
    return [verbalize(spec, i, label_style) for i in range(len(spec.labels))]


def format_row(spec, row: Row, split: str, label_style: str = "ids", where: str = "") -> list[dict]:
    """Examples for one raw row: ``[{"input", "target", ...}]``. ``split`` is train, dev or test;
    dev/test rows keep what the metric needs (``answers``, ``group``)."""
    where = where or f"{spec.name} {split} row"
    if label_style not in LABEL_STYLES:
        raise ValueError(f"label_style {label_style!r} is not one of {LABEL_STYLES}")
    source = spec.build(row, where)
    evaluating = split != "train"
    if spec.kind == "classification":
        out = {"input": source, "target": verbalize(spec, class_index(spec, row, where), label_style)}
        if spec.group is not None and evaluating:
            out["group"] = spec.group(row, where)
        return [out]
    if spec.kind == "regression":
        score = field(row, spec.label_field, where)
        try:
            return [{"input": source, "target": stsb_target(score)}]
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: label {score!r}: {e} (a hidden test split has label -1)") from None
    answers = answers_of(row, spec.label_field, where, pad=spec.pad_answers)
    if not answers:  # unanswerable: nothing to learn or score; prepare counts these rows
        return []
    if evaluating:
        return [{"input": source, "target": answers[0], "answers": answers}]
    if spec.one_row_per_answer:
        return [{"input": source, "target": a} for a in answers]
    return [{"input": source, "target": answers[0]}]


def multirc_group(row: Row, where: str) -> str:
    """The question a MultiRC answer option belongs to: ``<paragraph>-<question>``."""
    idx = field(row, "idx", where)
    if not isinstance(idx, Mapping) or "paragraph" not in idx or "question" not in idx:
        raise ValueError(f"{where}: field 'idx' should hold 'paragraph' and 'question', got {idx!r}")
    return f"{idx['paragraph']}-{idx['question']}"
