"""The settings base: environment variables read once into a typed, frozen object.

Each target has its own class (`subscription.ingest_settings.IngestSettings`, ...,
`stream.forward_settings.ForwardSettings`) with the variables it uses, so a service never reads
or checks another's. A wrong value stops the
process at start with one line naming the variable, instead of a stack trace at the first
request. `from_env` reads an explicit mapping, so tests build settings without touching the
process environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .secrets import CachePolicy, Secret, configured_secret


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the operator."""


def csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class ServiceSettings(BaseModel):
    """What every service reads: the project, Pub/Sub, Secret Manager and logging."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    GOOGLE_CLOUD_PROJECT: str = ""
    PUBSUB_EMULATOR_HOST: str = ""
    PUBLISH_TIMEOUT_SECONDS: float = Field(4.0, gt=0, le=30)
    BODY_TIMEOUT_SECONDS: float = Field(10.0, gt=0, le=300)
    SECRET_MANAGER_ENDPOINT: str = ""
    SECRET_CACHE_SECONDS: float = Field(300.0, ge=0)
    SECRET_REFRESH_MIN_SECONDS: float = Field(5.0, ge=0)
    SECRET_MAX_STALE_SECONDS: float = Field(3600.0, gt=0)
    LOG_LEVEL: str = "INFO"

    @field_validator("LOG_LEVEL")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from `environ` (default: the process environment); `ConfigError` with
        one line naming the variable when a value is wrong."""
        environ = os.environ if environ is None else environ
        values = {name: environ[name] for name in cls.model_fields if name in environ}
        return cls.checked(**values)

    @classmethod
    def checked(cls, **values: Any) -> Self:
        """`cls(**values)`, with a wrong value reported as `ConfigError` (one line)."""
        try:
            return cls(**values)
        except ValidationError as error:
            raise ConfigError(_one_line(error)) from None

    def secret(self, direct: str, version: str) -> Secret | None:
        """`configured_secret` for a setting pair, with the service's cache policy."""
        return configured_secret(direct, version, self.SECRET_MANAGER_ENDPOINT, self.cache_policy)

    def required_secret(self, direct: str, version: str) -> Secret:
        """`secret` for a pair the settings' own checks require (one of the two is set)."""
        found = self.secret(direct, version)
        if found is None:
            raise ConfigError("configuration error: a required secret is not set")
        return found

    @property
    def cache_policy(self) -> CachePolicy:
        """How long what is read from Secret Manager is trusted, for every secret of the
        service."""
        return CachePolicy(
            self.SECRET_CACHE_SECONDS,
            self.SECRET_REFRESH_MIN_SECONDS,
            self.SECRET_MAX_STALE_SECONDS,
        )

    @classmethod
    def default(cls, name: str) -> str:
        """A variable's default as the environment would spell it."""
        value = cls.model_fields[name].get_default(call_default_factory=True)
        if isinstance(value, bool | dict):
            return json.dumps(value)
        return "" if value is None else str(value)


def http_url(value: str) -> str:
    """An http(s) URL without its trailing slash; empty stays empty."""
    if value and not value.startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/") if value else value


class TenantSettings(ServiceSettings):
    """The SaaSquatch tenant: deliver sends to it, and saasquatch_webhook takes its webhooks
    unless told which tenants to take. One declaration, so both read it with one default."""

    SAASQUATCH_TENANT_ALIAS: str = ""


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    # A rule across settings (no `loc`) names its settings in its message.
    return f"configuration error: {name}: {message}" if name else f"configuration error: {message}"
