"""The user's price file (`--prices`): rules that override or discount genai-prices' list prices.

Its own module because it is validated with pydantic, which an analyze without a price file never needs before
its inputs are parsed (see `pricing`)."""

from __future__ import annotations

import fnmatch
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .config import load_yaml_model
from .pricing import COMPONENTS, Rate


def _dec(value: Any) -> Decimal:
    try:
        if isinstance(value, str) and value.strip().endswith("%"):
            return Decimal(value.strip()[:-1]) / 100
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


Money = Annotated[Decimal, BeforeValidator(_dec), Field(ge=0)]


class TierSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    above: int = Field(gt=0, description="total input tokens above which the whole request uses these prices")
    input: Money
    output: Money
    cache_read: Money | None = None
    cache_write: Money | None = None
    cache_write_1h: Money | None = None


class ModelPriceSpec(BaseModel):
    """One price rule: explicit rates, a discount on the list price, or both."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    model: str = Field(min_length=1, description="model name as logged; * and ? wildcards allowed")
    provider: str | None = None
    input: Money | None = None
    output: Money | None = None
    cache_read: Money | None = None
    cache_write: Money | None = None
    cache_write_1h: Money | None = None
    tiers: list[TierSpec] = []
    discount: Annotated[Decimal, BeforeValidator(_dec), Field(ge=0, lt=1)] | None = None
    from_: date | None = Field(default=None, alias="from")
    until: date | None = None

    @model_validator(mode="after")
    def _complete(self) -> ModelPriceSpec:
        if (self.input is None) != (self.output is None):
            raise ValueError("give both input and output prices (USD per million tokens)")
        if self.input is None and self.discount is None:
            raise ValueError("give input and output prices, or a discount on the list price")
        if self.input is None and (self.tiers or self.cache_read or self.cache_write or self.cache_write_1h):
            raise ValueError("cache and tier prices need input and output prices too")
        return self

    def matches(self, provider: str | None, model: str, day: date | None) -> bool:
        if self.provider is not None and self.provider != provider:
            return False
        if not fnmatch.fnmatchcase(model, self.model):
            return False
        if self.from_ is not None or self.until is not None:
            if day is None:
                return False
            if self.from_ is not None and day < self.from_:
                return False
            if self.until is not None and day > self.until:
                return False
        return True

    def rates(self) -> dict[str, Rate | None]:
        assert self.input is not None and self.output is not None
        out: dict[str, Rate | None] = {}
        for component in COMPONENTS:
            base = getattr(self, component)
            if base is None:
                out[component] = None
                continue
            tiers = tuple(
                (t.above, getattr(t, component))
                for t in sorted(self.tiers, key=lambda t: t.above)
                if getattr(t, component) is not None
            )
            out[component] = Rate(base, tiers)
        return out


class PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    models: list[ModelPriceSpec] = []


def load_price_file(path: str | Path) -> PriceFile:
    return load_yaml_model(path, PriceFile, "price file")
