"""Operator tools: `run_local` (make run), `provision`; each is `python -m tools.<name>`."""


def env_flag(value: str | None) -> bool:
    """An environment switch the way settings.py reads booleans."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
