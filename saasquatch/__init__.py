"""SaaSquatch REST client: one client, typed answers, and two kinds of error (API vs not)."""

from .client import Answer, ApiKey, FixedApiKey, SaaSquatchClient, basic_auth, tenant_url
from .dry_run import DryRunClient
from .errors import (
    ApiError,
    NoAnswer,
    SaaSquatchError,
    UnexpectedAnswer,
    UnsendableBody,
    is_transient_status,
)

__all__ = [
    "Answer",
    "ApiError",
    "ApiKey",
    "DryRunClient",
    "FixedApiKey",
    "NoAnswer",
    "SaaSquatchClient",
    "SaaSquatchError",
    "UnexpectedAnswer",
    "UnsendableBody",
    "basic_auth",
    "is_transient_status",
    "tenant_url",
]
