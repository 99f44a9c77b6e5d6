"""ingest's settings: where raw events go, which tokens are accepted, body limits."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from common.settings import ServiceSettings, csv


class IngestSettings(ServiceSettings):
    PUBSUB_TOPIC: str = "segment-events"
    PUBSUB_ORDERING: bool = False
    INGEST_TOKEN: str = ""
    INGEST_TOKEN_SECRET: str = ""
    SEGMENT_SHARED_SECRET: str = ""
    MAX_BODY_BYTES: int = Field(8 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _some_token(self) -> Self:
        # Without one every request would be refused (401) and every event lost: refuse to start.
        if not self.ingest_tokens and not self.ingest_token_secrets:
            raise ValueError(
                "no token is configured: set INGEST_TOKEN_SECRET (or INGEST_TOKEN); without one "
                "every request would be refused"
            )
        return self

    @property
    def ingest_tokens(self) -> list[str]:
        return csv(self.INGEST_TOKEN)

    @property
    def ingest_token_secrets(self) -> list[str]:
        return csv(self.INGEST_TOKEN_SECRET)
