"""saasquatch_webhook's settings: where webhooks go and how their signatures are checked."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from common.settings import ServiceSettings, http_url

SAASQUATCH_JWKS_URL = "https://app.referralsaasquatch.com/.well-known/jwks.json"


class WebhookSettings(ServiceSettings):
    WEBHOOK_TOPIC: str = "saasquatch-webhooks"
    WEBHOOK_JWKS_URL: str = SAASQUATCH_JWKS_URL
    WEBHOOK_JWKS_CACHE_SECONDS: float = Field(3600.0, gt=0)
    WEBHOOK_JWKS_REFETCH_SECONDS: float = Field(30.0, ge=0)
    WEBHOOK_JWKS_TIMEOUT_SECONDS: float = Field(5.0, gt=0, le=30)
    # The older HMAC signature, keyed with the tenant's API key: off unless one is given.
    WEBHOOK_HMAC_API_KEY: str = ""
    WEBHOOK_HMAC_API_KEY_SECRET: str = ""
    MAX_WEBHOOK_BYTES: int = Field(1024 * 1024, gt=0, le=10 * 1024 * 1024)

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
    def accepts_hmac(self) -> bool:
        return bool(self.WEBHOOK_HMAC_API_KEY or self.WEBHOOK_HMAC_API_KEY_SECRET)
