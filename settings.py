"""Every environment variable, read once into one typed object.

A wrong value stops the process at start with one line naming the variable, instead of a stack
trace at the first request.
"""

from __future__ import annotations

import json
from functools import cached_property, lru_cache
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mapper import InvalidDataStrategy, MappingOptions, TrackUpsertStrategy


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the operator."""


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    GOOGLE_CLOUD_PROJECT: str = ""
    PUBSUB_EMULATOR_HOST: str = ""
    PUBSUB_TOPIC: str = "segment-events"
    PUBSUB_ORDERING: bool = False
    PUBLISH_TIMEOUT_SECONDS: float = Field(4.0, gt=0, le=30)
    DEAD_LETTER_TOPIC: str = "segment-events-dead-letter"

    INGEST_TOKEN_SECRET: str = ""
    INGEST_TOKEN: str = ""
    SEGMENT_SHARED_SECRET: str = ""
    SECRET_MANAGER_ENDPOINT: str = ""
    SECRET_CACHE_SECONDS: float = Field(300.0, ge=0)
    SECRET_REFRESH_MIN_SECONDS: float = Field(5.0, ge=0)
    MAX_BODY_BYTES: int = Field(5 * 1024 * 1024, gt=0)

    SAASQUATCH_TENANT_ALIAS: str = ""
    SAASQUATCH_API_KEY: str = ""
    SAASQUATCH_API_KEY_SECRET: str = ""
    SAASQUATCH_BASE_URL: str = "https://app.referralsaasquatch.com"
    SAASQUATCH_TIMEOUT_SECONDS: float = Field(10.0, gt=0)
    DRY_RUN: bool | None = None
    PUSH_AUDIENCE: str = ""
    PUSH_SERVICE_ACCOUNT: str = ""
    PUSH_CERTS_URL: str = ""

    TRACK_UPSERT_STRATEGY: TrackUpsertStrategy = TrackUpsertStrategy.MISSING_USER
    INVALID_DATA_STRATEGY: InvalidDataStrategy = InvalidDataStrategy.STRINGIFY_FIELD
    REMAP_ORDER_COMPLETED: bool = True
    EVENT_KEY_MAP: Annotated[dict[str, str], NoDecode] = {}
    IGNORE_IDENTIFY: bool = False
    HONOR_DELETE: bool = False

    LOG_LEVEL: str = "INFO"

    @field_validator("EVENT_KEY_MAP", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object of event name -> event key")
        return value

    @field_validator("SAASQUATCH_BASE_URL", "PUSH_CERTS_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @model_validator(mode="after")
    def _tenant_needs_a_key(self) -> Settings:
        has_key = bool(self.SAASQUATCH_API_KEY or self.SAASQUATCH_API_KEY_SECRET)
        if self.SAASQUATCH_TENANT_ALIAS and not has_key and self.DRY_RUN is not True:
            raise ValueError(
                "SAASQUATCH_TENANT_ALIAS is set but neither SAASQUATCH_API_KEY nor "
                "SAASQUATCH_API_KEY_SECRET is"
            )
        if self.DRY_RUN is False and not self.SAASQUATCH_TENANT_ALIAS:
            raise ValueError("DRY_RUN=false needs SAASQUATCH_TENANT_ALIAS and an API key")
        self.mapping_options  # built (and the event key map checked) once, at start  # noqa: B018
        return self

    @property
    def ingest_tokens(self) -> list[str]:
        return _csv(self.INGEST_TOKEN)

    @property
    def ingest_token_secrets(self) -> list[str]:
        return _csv(self.INGEST_TOKEN_SECRET)

    @property
    def dry_run(self) -> bool:
        """Dry run unless told otherwise, or when there is nowhere to deliver."""
        if self.DRY_RUN is not None:
            return self.DRY_RUN
        return not self.SAASQUATCH_TENANT_ALIAS

    @cached_property
    def mapping_options(self) -> MappingOptions:
        return MappingOptions(
            track_upsert_strategy=self.TRACK_UPSERT_STRATEGY,
            invalid_data_strategy=self.INVALID_DATA_STRATEGY,
            remap_order_completed=self.REMAP_ORDER_COMPLETED,
            event_key_map=self.EVENT_KEY_MAP,
            ignore_identify=self.IGNORE_IDENTIFY,
            honor_delete=self.HONOR_DELETE,
        )


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = ".".join(str(part) for part in first["loc"]) or "configuration"
    message = first["msg"].removeprefix("Value error, ")
    return f"configuration error: {name}: {message}"


@lru_cache(maxsize=1)
def load() -> Settings:
    """The process's settings, read from the environment once."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigError(_one_line(error)) from None
    except ValueError as error:  # e.g. JSON that pydantic-settings could not decode
        raise ConfigError(f"configuration error: {error}") from None
