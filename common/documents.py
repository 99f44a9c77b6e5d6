"""What the previews read: one JSON document, or JSON Lines with a problem per bad line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_TOO_DEEP = "nested too deeply to read"


def documents(text: str) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed JSON, error): the whole input if it is one document, else each line."""
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # lines, then: each says what is wrong
        pass
    else:
        yield 1, whole, None
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except json.JSONDecodeError as error:
            yield number, None, f"invalid JSON ({error.msg} at column {error.colno})"
        except RecursionError:
            yield number, None, _TOO_DEEP
