"""The one name rule for families and tasks; checked before a name ever touches a path."""

import re

from .errors import InvalidName

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def validate_name(name: object, kind: str = "task") -> str:
    """Return ``name`` if it is a valid family/task name, else raise :class:`InvalidName`."""
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise InvalidName(
            f"invalid {kind} name {name!r}: a name is 1-64 characters of lowercase letters, digits, "
            f"'_', '.' or '-', starting with a letter or digit ({NAME_PATTERN})"
        )
    return name
