"""Operator tools, `python -m tools COMMAND`: run (make run), provision, backfill, dead-letters."""


def env_flag(value: str | None) -> bool:
    """An environment switch the way settings.py reads booleans."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
