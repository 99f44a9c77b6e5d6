"""What the transformers' results become: segments on an identify's upsert, the fields of a
track's upsert, a track's upsert strategy. A transformer that fails ends the message as
`transformer_failed` (with JSONata's error code), one whose result has the wrong shape as
`transformer_invalid_result`; both are dead letters, never an exception out of the mapper.
Details name settings, codes and field names, never a value.
"""

from __future__ import annotations

from typing import Any

from common.outcomes import Reason

from . import sanitize
from .identify import code_list, custom_fields, text_value
from .notes import Notes
from .options import MappingOptions, TrackUpsertStrategy
from .plan import Undeliverable
from .segments import checked_segments
from .transformers import Transformer, TransformerFailed

# The open user upsert's fields a transformer may set (not `id` nor `accountId`: they say which
# user this is, and an expression must not move the data to another one).
TEXT_FIELDS = ("email", "firstName", "lastName", "imageUrl")
UPSERT_FIELDS = frozenset({*TEXT_FIELDS, "locale", "referredByCodes", "customFields", "segments"})


def evaluated(transformer: Transformer, message: dict[str, Any]) -> Any:
    try:
        return transformer.evaluate(message)
    except TransformerFailed as error:
        if error.library:
            why = f"failed (jsonata-python raised {error.code})"
        elif error.code == "D1012":
            why = f"timed out after {transformer.timeout_ms} ms (JSONata D1012)"
        elif error.function:
            why = f"failed in {error.function} (JSONata {error.code})"
        else:
            why = f"failed (JSONata {error.code})"
        raise Undeliverable(Reason.TRANSFORMER_FAILED, f"{transformer.setting} {why}") from None


def _invalid(transformer: Transformer, what: str) -> Undeliverable:
    return Undeliverable(Reason.TRANSFORMER_INVALID_RESULT, f"{transformer.setting} {what}")


def _operations(transformer: Transformer, value: Any) -> list[str]:
    """A list of segment operations (one string alone is a list of one)."""
    items = value if isinstance(value, list) else [value]
    operations = []
    for item in items:
        if isinstance(item, str):
            operations.append(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            operations.append(str(item))
        else:
            raise _invalid(transformer, "must give segment names (strings)")
    return operations


def identify_segments(message: dict[str, Any], options: MappingOptions, notes: Notes) -> list[str]:
    """The segment operations IDENTIFY_SEGMENTS_TRANSFORMER gives the identify (none without)."""
    transformer = options.identify_segments_transformer
    if transformer is None:
        return []
    result = evaluated(transformer, message)
    if result is None:
        return []
    return checked_segments(
        _operations(transformer, result), options.invalid_segments_strategy, notes
    )


def track_upsert_strategy(message: dict[str, Any], options: MappingOptions) -> TrackUpsertStrategy:
    """The strategy for this track: the setting's, or its expression's value (any case)."""
    strategy = options.track_upsert_strategy
    if isinstance(strategy, TrackUpsertStrategy):
        return strategy
    result = evaluated(strategy, message)
    if isinstance(result, str):
        try:
            return TrackUpsertStrategy(result.strip().lower())
        except ValueError:
            pass
    raise _invalid(strategy, "must give never, missing_user or always")


def upsert_fields(message: dict[str, Any], options: MappingOptions, notes: Notes) -> dict[str, Any]:
    """The user upsert fields TRACK_UPSERT_TRANSFORMER gives this track (none without), custom
    fields and segments checked by the usual rules; they win over the standard ones."""
    transformer = options.track_upsert_transformer
    if transformer is None:
        return {}
    result = evaluated(transformer, message)
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise _invalid(transformer, "must give an object of user upsert fields")
    unknown = sorted(name for name in result if name not in UPSERT_FIELDS)
    if unknown:
        shown = ", ".join(sanitize.cut_chars(str(name), 64) for name in unknown[:5])
        raise _invalid(transformer, f"gives fields the user upsert does not take: {shown}")
    return _fields(transformer, result, options, notes)


def _fields(
    transformer: Transformer, result: dict[str, Any], options: MappingOptions, notes: Notes
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in result.items():
        if value is None:
            continue
        converted: Any
        if name in TEXT_FIELDS:
            if isinstance(value, dict | list):
                raise _invalid(transformer, f"gives {name} that is not text")
            converted = text_value(value)
        elif name == "locale":
            converted = sanitize.locale(value)
            if converted is None:
                notes.say("transformer's locale left out (not a locale)")
        elif name == "referredByCodes":
            converted = code_list(value)
        elif name == "customFields":
            if not isinstance(value, dict):
                raise _invalid(transformer, "gives customFields that is not an object")
            converted = custom_fields(value, notes) or None
        else:  # segments
            operations = _operations(transformer, value)
            converted = checked_segments(operations, options.invalid_segments_strategy, notes)
        if converted is not None:
            fields[name] = converted
    return fields
