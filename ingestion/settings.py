"""ingest's settings: where raw events go, which tokens are accepted, body limits."""

from __future__ import annotations

from pydantic import Field

from common.settings import ServiceSettings, csv


class IngestSettings(ServiceSettings):
    PUBSUB_TOPIC: str = "segment-events"
    PUBSUB_ORDERING: bool = False
    INGEST_TOKEN: str = ""
    INGEST_TOKEN_SECRET: str = ""
    SEGMENT_SHARED_SECRET: str = ""
    MAX_BODY_BYTES: int = Field(8 * 1024 * 1024, gt=0)

    @property
    def ingest_tokens(self) -> list[str]:
        return csv(self.INGEST_TOKEN)

    @property
    def ingest_token_secrets(self) -> list[str]:
        return csv(self.INGEST_TOKEN_SECRET)
