"""What every push consumer (deliver, forward) reads: the check of Pub/Sub's OIDC token."""

from __future__ import annotations

from typing import Self

from pydantic import field_validator, model_validator

from common.settings import ServiceSettings, http_url


class PushSettings(ServiceSettings):
    """What every push consumer (deliver, forward) reads to check Pub/Sub's OIDC token."""

    PUSH_AUDIENCE: str = ""
    PUSH_SERVICE_ACCOUNT: str = ""
    PUSH_CERTS_URL: str = ""
    PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN: bool = False

    @field_validator("PUSH_CERTS_URL")
    @classmethod
    def _certs_url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _audience_needs_an_account(self) -> Self:
        # Any Google-signed token minted for the audience (by any project's service account)
        # would pass the audience check alone.
        if self.PUSH_AUDIENCE and not self.PUSH_SERVICE_ACCOUNT:
            raise ValueError(
                "PUSH_AUDIENCE is set without PUSH_SERVICE_ACCOUNT: set the push subscription's "
                "service account too, or neither"
            )
        if self.PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN and not self.PUSH_AUDIENCE:
            raise ValueError(
                "PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN is set without PUSH_AUDIENCE and "
                "PUSH_SERVICE_ACCOUNT: it only tells deliver how to check the push token"
            )
        return self
