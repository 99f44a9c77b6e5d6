"""deliver's settings: SaaSquatch, the dead-letter topic, the ledger, the memory of accounts, the
mapping switches (and the push check every consumer shares, `pushes.settings.PushSettings`)."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from common.settings import TenantSettings, http_url
from mapper import InvalidDataStrategy, MappingOptions
from mapper.options import parse_track_upsert_strategy
from mapper.segments import InvalidSegmentsStrategy
from mapper.transformers import DEFAULT_TIMEOUT_MS, Transformer
from pushes.settings import PushSettings


class DeliverSettings(PushSettings, TenantSettings):
    DEAD_LETTER_TOPIC: str = "segment-events-dead-letter"

    SAASQUATCH_API_KEY: str = ""
    SAASQUATCH_API_KEY_SECRET: str = ""
    SAASQUATCH_BASE_URL: str = "https://app.referralsaasquatch.com"
    SAASQUATCH_TIMEOUT_SECONDS: float = Field(10.0, gt=0)
    DRY_RUN: bool | None = None

    DELIVERY_LEDGER: bool = True
    LEDGER_DATABASE: str = "(default)"
    LEDGER_COLLECTION: str = "segment_saasquatch_deliveries"
    LEDGER_CHECK_AFTER_HOURS: float = Field(20.0, gt=0, le=24)
    LEDGER_TIMEOUT_SECONDS: float = Field(5.0, gt=0, le=30)
    FIRESTORE_EMULATOR_HOST: str = ""
    # Unset (or empty): on wherever the ledger is, since it lives in the ledger's database.
    REMEMBER_ACCOUNTS: bool | None = None
    ACCOUNTS_COLLECTION: str = "segment_saasquatch_accounts"

    # A strategy name, or a JSONata expression giving one per event (compiled in mapping_options).
    TRACK_UPSERT_STRATEGY: str = "missing_user"
    TRACK_UPSERT_TRANSFORMER: str = ""
    IDENTIFY_SEGMENTS_TRANSFORMER: str = ""
    INVALID_SEGMENTS_STRATEGY: InvalidSegmentsStrategy = InvalidSegmentsStrategy.DISCARD_INVALID
    TRANSFORMER_TIMEOUT_MS: int = Field(DEFAULT_TIMEOUT_MS, gt=0, le=5000)
    INVALID_DATA_STRATEGY: InvalidDataStrategy = InvalidDataStrategy.STRINGIFY_FIELD
    REMAP_ORDER_COMPLETED: bool = True
    EVENT_KEY_MAP: dict[str, str] = Field(default_factory=dict)
    IGNORE_IDENTIFY: bool = False
    HONOR_DELETE: bool = False

    @field_validator("EVENT_KEY_MAP", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object of event name -> event key")
        return value

    @field_validator("REMEMBER_ACCOUNTS", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """Empty (as the build passes it) is unset; anything else is read as every boolean
        setting is (so " " and " yes " are refused alike, as HONOR_DELETE's would be)."""
        return None if value == "" else value

    @field_validator("SAASQUATCH_BASE_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _tenant_needs_a_key(self) -> Self:
        has_key = bool(self.SAASQUATCH_API_KEY or self.SAASQUATCH_API_KEY_SECRET)
        if self.SAASQUATCH_TENANT_ALIAS and not has_key and self.DRY_RUN is not True:
            raise ValueError(
                "SAASQUATCH_TENANT_ALIAS is set but neither SAASQUATCH_API_KEY nor "
                "SAASQUATCH_API_KEY_SECRET is"
            )
        if self.DRY_RUN is False and not self.SAASQUATCH_TENANT_ALIAS:
            raise ValueError("DRY_RUN=false needs SAASQUATCH_TENANT_ALIAS and an API key")
        # Built once, at start: the event key map checked, every JSONata expression compiled.
        self.mapping_options  # noqa: B018
        return self

    @property
    def dry_run(self) -> bool:
        """Dry run unless told otherwise, or when there is nowhere to deliver."""
        if self.DRY_RUN is not None:
            return self.DRY_RUN
        return not self.SAASQUATCH_TENANT_ALIAS

    @property
    def uses_ledger(self) -> bool:
        """A dry run sends nothing, so it must not record (or skip) anything either."""
        return self.DELIVERY_LEDGER and not self.dry_run

    @property
    def remembers_accounts(self) -> bool:
        """The memory of accounts (subscription/accounts.py) is on unless switched off; left
        unset it follows DELIVERY_LEDGER, whose Firestore database it shares (a deployment
        without Firestore switches the ledger off). Unlike the ledger it works in a dry run: it
        records what the messages say, not what SaaSquatch did."""
        if self.REMEMBER_ACCOUNTS is not None:
            return self.REMEMBER_ACCOUNTS
        return self.DELIVERY_LEDGER

    @cached_property
    def mapping_options(self) -> MappingOptions:
        """The mapper's options; `ValueError` naming the setting when an expression is wrong."""
        return MappingOptions(
            track_upsert_strategy=parse_track_upsert_strategy(
                self.TRACK_UPSERT_STRATEGY, timeout_ms=self.TRANSFORMER_TIMEOUT_MS
            ),
            identify_segments_transformer=Transformer.of_setting(
                "IDENTIFY_SEGMENTS_TRANSFORMER",
                self.IDENTIFY_SEGMENTS_TRANSFORMER,
                self.TRANSFORMER_TIMEOUT_MS,
            ),
            track_upsert_transformer=Transformer.of_setting(
                "TRACK_UPSERT_TRANSFORMER",
                self.TRACK_UPSERT_TRANSFORMER,
                self.TRANSFORMER_TIMEOUT_MS,
            ),
            invalid_segments_strategy=self.INVALID_SEGMENTS_STRATEGY,
            invalid_data_strategy=self.INVALID_DATA_STRATEGY,
            remap_order_completed=self.REMAP_ORDER_COMPLETED,
            event_key_map=self.EVENT_KEY_MAP,
            ignore_identify=self.IGNORE_IDENTIFY,
            honor_delete=self.HONOR_DELETE,
        )
