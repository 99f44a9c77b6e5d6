"""What ingest accepts as a body: strict JSON in one of the shapes Segment sends
(`mapper.dialects`), or a 400 saying what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

from common.http import Refusal
from common.outcomes import Reason
from mapper.dialects import BodyError, NotJson, finite_float, messages_from_body, reject_constant


def parse_messages(raw: bytes) -> list[dict[str, Any]]:
    """The messages of a request body, or a 400 saying what is wrong with it (in our words,
    never the parser's exception or advice)."""
    try:
        body = json.loads(raw, parse_constant=reject_constant, parse_float=finite_float)
    except UnicodeDecodeError:
        raise _invalid("body is not UTF-8 JSON") from None
    except RecursionError:
        raise _invalid("body is nested too deeply") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise _invalid(f"body is not valid JSON: {error.msg} at {where}") from None
    except NotJson as error:
        raise _invalid(f"body is not valid JSON: {error}") from None
    except ValueError:  # Python's own bound on integer digits is the only other one
        raise _invalid("body is not valid JSON: a number has too many digits") from None
    try:
        return messages_from_body(body)
    except BodyError as error:
        raise _invalid(str(error)) from None


def _invalid(message: str) -> Refusal:
    return Refusal(Reason.INVALID_BODY, message)
