"""saasquatch_webhook's settings: where webhooks go and how their signatures are checked."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from common.settings import TenantSettings, csv, http_url

from .admission import HOUR_MS, Admission

_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,64}")
SAASQUATCH_JWKS_URL = "https://app.referralsaasquatch.com/.well-known/jwks.json"


class WebhookSettings(TenantSettings):
    WEBHOOK_TOPIC: str = "saasquatch-webhooks"
    WEBHOOK_JWKS_URL: str = SAASQUATCH_JWKS_URL
    WEBHOOK_JWKS_CACHE_SECONDS: float = Field(3600.0, gt=0)
    WEBHOOK_JWKS_REFETCH_SECONDS: float = Field(30.0, ge=0)
    WEBHOOK_JWKS_TIMEOUT_SECONDS: float = Field(5.0, gt=0, le=30)
    # The older HMAC signature, keyed with the tenant's API key: off unless one is given.
    WEBHOOK_HMAC_API_KEY: str = ""
    WEBHOOK_HMAC_API_KEY_SECRET: str = ""
    MAX_WEBHOOK_BYTES: int = Field(1024 * 1024, gt=0, le=10 * 1024 * 1024)
    # Whose webhooks are forwarded: a valid signature proves only "from SaaSquatch".
    WEBHOOK_TENANT_ALIASES: str = ""  # comma-separated; default: SAASQUATCH_TENANT_ALIAS
    WEBHOOK_LIVE: Literal["any", "live", "test"] = "any"
    # SaaSquatch retries hourly, 72 times at most: anything older is a replay, not a retry.
    WEBHOOK_MAX_AGE_HOURS: int = Field(74, ge=1, le=24 * 366)
    WEBHOOK_FUTURE_SKEW_SECONDS: int = Field(300, ge=0, le=3600)

    @field_validator("WEBHOOK_TENANT_ALIASES", "SAASQUATCH_TENANT_ALIAS")
    @classmethod
    def _aliases(cls, value: str) -> str:
        wrong = [alias for alias in csv(value) if not _ALIAS.fullmatch(alias)]
        if wrong:
            raise ValueError("a tenant alias is letters, digits, `_` and `-` (up to 64)")
        return value

    @model_validator(mode="after")
    def _a_tenant(self) -> Self:
        if not self.tenant_aliases:
            raise ValueError(
                "WEBHOOK_TENANT_ALIASES (or SAASQUATCH_TENANT_ALIAS) must name your tenant: "
                "any SaaSquatch tenant can send webhooks signed with the same keys"
            )
        return self

    @field_validator("WEBHOOK_JWKS_URL")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            raise ValueError("must be set: webhooks are only accepted with a signature")
        return http_url(value)

    @model_validator(mode="after")
    def _one_hmac_key(self) -> Self:
        if self.WEBHOOK_HMAC_API_KEY and self.WEBHOOK_HMAC_API_KEY_SECRET:
            raise ValueError(
                "WEBHOOK_HMAC_API_KEY and WEBHOOK_HMAC_API_KEY_SECRET are both set: use one"
            )
        return self

    @property
    def tenant_aliases(self) -> frozenset[str]:
        return frozenset(csv(self.WEBHOOK_TENANT_ALIASES or self.SAASQUATCH_TENANT_ALIAS))

    @property
    def admission(self) -> Admission:
        return Admission(
            self.tenant_aliases,
            self.WEBHOOK_LIVE,
            self.WEBHOOK_MAX_AGE_HOURS * HOUR_MS,
            self.WEBHOOK_FUTURE_SKEW_SECONDS * 1000,
        )

    @property
    def accepts_hmac(self) -> bool:
        return bool(self.WEBHOOK_HMAC_API_KEY or self.WEBHOOK_HMAC_API_KEY_SECRET)
