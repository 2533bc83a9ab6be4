"""The settings reference page, walked from the pydantic settings models, so that no name, default
or help is kept by hand.

Every ``BaseSettings`` class of ``MODULES`` (a module, or a package and its modules) is walked field
by field; a field whose type is itself a pydantic model is walked in turn, under its own heading.
A field's environment variable is its alias when it has one, else the model's ``env_prefix`` and
the field's name in capitals (``max_queue`` -> ``MPT_MAX_QUEUE``). A settings package that knows
better says so with a function ``settings_reference()``: its answer (markdown, or rows with ``env``,
``default`` and ``description``) is used instead of the walk.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType

from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

MODULES = ("service.settings", "service.runtime.ray_settings")


@dataclass(frozen=True)
class Row:
    env: str
    default: str
    type: str
    description: str
    section: str = ""


def _modules(name: str) -> Iterator[ModuleType]:
    module = importlib.import_module(name)
    yield module
    if hasattr(module, "__path__"):  # a package: its modules too
        for info in pkgutil.walk_packages(module.__path__, f"{name}."):
            yield importlib.import_module(info.name)


def settings_classes(name: str) -> list[type[BaseSettings]]:
    """The BaseSettings classes defined in module or package ``name``, in source order."""
    found = {}
    for module in _modules(name):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseSettings) and obj is not BaseSettings and obj.__module__ == module.__name__:
                found.setdefault(obj, inspect.getsourcelines(obj)[1] if obj.__module__ else 0)
    return sorted(found, key=lambda c: (c.__module__, found[c]))


def _model_in(annotation) -> type[BaseModel] | None:
    """The pydantic model a field holds (``Batching``, ``Batching | None``), else None."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    models = [a for a in typing.get_args(annotation) if inspect.isclass(a) and issubclass(a, BaseModel)]
    return models[0] if len(models) == 1 and not isinstance(annotation, type) else None


def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if args:
        inner = [a for a in args if a is not type(None)]
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(inner) == 1:
            return _type_name(inner[0])
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


def _value(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "unset" if not value.get_secret_value() else "(secret)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        return ",".join("x".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for v in value) or "(none)"
    return str(value)


def _env(name: str, field, prefix: str) -> str:
    alias = field.validation_alias or field.alias
    if isinstance(alias, AliasChoices):
        alias = next((c for c in alias.choices if isinstance(c, str)), None)
    return alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper()


def walk(model: type[BaseModel], prefix: str, section: str = "") -> Iterator[Row]:
    """One row per leaf field of ``model``, nested models walked under their own section."""
    for name, field in model.model_fields.items():
        nested = _model_in(field.annotation)
        if nested is not None:
            yield from walk(nested, prefix, f"{section}.{name}" if section else name)
            continue
        default = field.get_default(call_default_factory=True)
        yield Row(
            env=_env(name, field, prefix),
            default="required" if default is PydanticUndefined else _value(default),
            type=_type_name(field.annotation),
            description=(field.description or "").strip(),
            section=section,
        )


def _nested(models: list[type[BaseModel]]) -> set[type[BaseModel]]:
    """The models that are a field of another one (walked there, not on their own)."""
    inner, todo = set(), list(models)
    while todo:
        for field in todo.pop().model_fields.values():
            model = _model_in(field.annotation)
            if model is not None and model not in inner:
                inner.add(model)
                todo.append(model)
    return inner


def rows() -> list[tuple[type[BaseSettings], list[Row]]]:
    """Each top-level settings class of ``MODULES`` with its rows."""
    classes = [cls for name in MODULES for cls in settings_classes(name)]
    inner = _nested(classes)
    return [(c, list(walk(c, c.model_config.get("env_prefix", "")))) for c in classes if c not in inner]


def default_of(name: str) -> str:
    """The default of a setting named by its field (``max_queue``) or its variable (``MPT_MAX_QUEUE``)."""
    want = name.upper()
    for _, fields in rows():
        for row in fields:
            if row.env in (want, f"MPT_{want}"):
                return row.default
    from .figures import FigureError

    raise FigureError(f"no setting {name!r}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "–"


def _table(fields: list[Row]) -> str:
    lines = ["| variable | default | type | what it sets |", "| --- | --- | --- | --- |"]
    lines += [f"| `{r.env}` | `{_cell(r.default)}` | {r.type} | {_cell(r.description)} |" for r in fields]
    return "\n".join(lines)


def _from_package(module: ModuleType) -> str | None:
    """The page from the settings package's own ``settings_reference()``, when it has one."""
    make = getattr(module, "settings_reference", None)
    if make is None:
        return None
    answer = make()
    if isinstance(answer, str):
        return answer
    rows_ = [a if isinstance(a, Mapping) else a._asdict() if hasattr(a, "_asdict") else vars(a) for a in answer]
    fields = [
        Row(
            env=str(r.get("env") or r.get("name")),
            default=_value(r.get("default")),
            type=str(r.get("type", "")),
            description=str(r.get("description") or r.get("help") or ""),
            section=str(r.get("section", "")),
        )
        for r in rows_
    ]
    return _sections(fields)


def _sections(fields: list[Row]) -> str:
    out, sections = [], list(dict.fromkeys(r.section for r in fields))
    for section in sections:
        if section:
            out.append(f"### {section}\n")
        out.append(_table([r for r in fields if r.section == section]) + "\n")
    return "\n".join(out)


def _doc(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def page() -> str:
    parts = [
        "# Settings\n",
        "Every setting is an environment variable, read once at start-up and checked then: a bad value "
        "stops the process with a message that names it. The flags of `mpt serve` override the server's "
        "(see the [CLI reference](cli.md)). This page is generated from the settings models when the "
        "site is built.\n",
    ]
    for name in MODULES:
        module = importlib.import_module(name)
        custom = _from_package(module)
        if custom is not None:
            parts.append(custom)
            continue
        for cls, fields in [(c, f) for c, f in rows() if c.__module__.startswith(name)]:
            prefix = cls.model_config.get("env_prefix", "")
            doc = (_doc(cls) if cls.__doc__ else _doc(importlib.import_module(cls.__module__))).replace("``", "`")
            title, _, rest = doc.partition(": ")  # "Server settings: what they are" -> a title and a sentence
            if not rest or len(title) > 60:
                title, rest = cls.__name__, doc
            parts.append(f"## {title[:1].upper()}{title[1:]}: `{prefix}*`\n")
            if rest:
                parts.append(rest[:1].upper() + rest[1:] + "\n")
            parts.append(_sections(fields))
    return "\n".join(parts)
