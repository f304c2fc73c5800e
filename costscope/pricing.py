"""Dated prices for every call: genai-prices plus user overrides, applied as column arithmetic.

A price is looked up once per distinct (provider, model, service tier, price period); each row then
takes its rates by index and the costs are computed on whole columns. Money is Decimal per million
tokens at this boundary and float64 USD in the table (rounded only for display).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .batch_terms import BATCH_TIER, BatchTerms, batch_terms
from .schema import nulls, row_run

# genai-prices and pydantic (0.2 s to import) are imported where used: an analyze loads its price book while
# the inputs are parsed (`PriceBook.preload`), not before.
if TYPE_CHECKING:
    from genai_prices import types as gp
    from genai_prices.data_snapshot import DataSnapshot

    from .price_file import ModelPriceSpec

PRICE_SOURCE = f"genai-prices {version('genai-prices')}"
UNDATED_PRICE_TIME = datetime(2100, 1, 1, 12, 0, tzinfo=UTC)
"""Calls without a timestamp are priced at the latest prices in the table (and reported as such)."""

COMPONENTS = ("input", "cache_read", "cache_write", "cache_write_1h", "output")
_GENAI_KEYS = {
    "input": "input_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
    "output": "output_mtok",
    "requests": "requests_kcount",
}
"""Our rate components and genai-prices' price keys (tokens per million; `requests` per thousand calls)."""
_SLOT_MINUTES = 30


@dataclass(frozen=True)
class Rate:
    """USD per million tokens; `tiers` are (threshold, price): above `threshold` total input tokens the
    whole request is billed at `price` (a cliff, as providers bill long context)."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def scaled(self, factor: Decimal) -> Rate:
        return Rate(self.base * factor, tuple((t, p * factor) for t, p in self.tiers))

    def describe(self) -> str:
        text = f"${self.base.normalize():f}"
        for threshold, price in self.tiers:
            text += f" (>{threshold:,}: ${price.normalize():f})"
        return text


@dataclass(frozen=True)
class PriceEntry:
    """The rates one call is billed at, and where they come from."""

    ref: str
    source: str
    rates: dict[str, Rate | None]
    batch_terms: str | None = None
    """The provider whose batch terms scaled the rates (the price data had no batch rates), else None."""

    def rate(self, component: str) -> Rate:
        """The rate of a component, falling back the way providers bill an unpriced bucket:
        cache reads and writes without a price of their own cost plain input; 1h writes without one cost
        the 5m write price."""
        own = self.rates.get(component)
        if own is not None:
            return own
        if component == "cache_write_1h":
            return self.rate("cache_write")
        input_rate = self.rates["input"]
        assert input_rate is not None
        return input_rate

    def to_json(self) -> dict[str, Any]:
        return {
            "price_ref": self.ref,
            "source": self.source,
            "usd_per_mtok": {
                c: (r.describe() if r is not None else None) for c, r in self.rates.items() if c != "requests"
            },
            "usd_per_1k_requests": r.describe() if (r := self.rates.get("requests")) is not None else None,
        }


def _rate_from_genai(value: Decimal | gp.TieredPrices | None) -> Rate | None:
    from genai_prices import types as gp

    if value is None:
        return None
    if isinstance(value, gp.TieredPrices):
        return Rate(value.base, tuple((t.start, t.price) for t in value.tiers))
    return Rate(value)


def _price_context(service_tier: str | None) -> dict[str, str] | None:
    if service_tier is None or service_tier in ("standard", "default", "auto", "standard_only"):
        return None
    if service_tier == BATCH_TIER:
        return {"processing": "batch"}
    return {"service_tier": service_tier}


def _period_start(model: gp.ModelInfo, when: datetime) -> str | None:
    from genai_prices import types as gp

    if isinstance(model.prices, gp.ModelPrice):
        return None
    for conditional in reversed(model.prices):
        constraint = conditional.constraint
        if constraint is None or constraint.active(when):
            if isinstance(constraint, gp.StartDateConstraint):
                return f"from {constraint.start_date.isoformat()}"
            if isinstance(constraint, gp.TimeOfDateConstraint):
                return f"{constraint.start_time:%H:%M}-{constraint.end_time:%H:%M} UTC"
            return "base prices"
    return None


def _with_batch_terms(entry: PriceEntry, terms: BatchTerms) -> PriceEntry:
    """A batch call's price where the rates have no batch variant: the standard rates times the provider's terms."""
    ref = f"{entry.ref} [batch terms: {terms.describe()}]"
    return PriceEntry(ref=ref, source=entry.source, rates=terms.scale(entry.rates), batch_terms=terms.provider)


def _snapshot() -> DataSnapshot:
    from genai_prices import data_snapshot

    return data_snapshot.get_snapshot()


@dataclass
class PriceBook:
    """genai-prices' bundled data plus user rules, resolved and cached per distinct key."""

    rules: list[ModelPriceSpec] = field(default_factory=list)
    rules_source: str | None = None
    _cache: dict[tuple[str | None, str, str | None, datetime], PriceEntry | None] = field(default_factory=dict)
    _matched_rules: set[int] = field(default_factory=set)

    @classmethod
    def from_file(cls, path: str | Path | None) -> PriceBook:
        if path is None:
            return cls()
        from .price_file import load_price_file

        return cls(rules=list(load_price_file(path).models), rules_source=Path(path).name)

    @staticmethod
    def preload() -> None:
        """Import and load genai-prices' data now (about 0.2 s), e.g. while the inputs are parsed."""
        _snapshot()

    @property
    def sources(self) -> list[str]:
        return [PRICE_SOURCE] + ([self.rules_source] if self.rules_source else [])

    def time_sensitive(self, provider: str | None, model: str) -> bool:
        """True when the model's list price depends on the time of day (off-peak pricing)."""
        from genai_prices import types as gp

        info = self._genai_model(provider, model)
        return (
            info is not None
            and not isinstance(info[1].prices, gp.ModelPrice)
            and any(isinstance(c.constraint, gp.TimeOfDateConstraint) for c in info[1].prices)
        )

    def _genai_model(self, provider: str | None, model: str) -> tuple[gp.Provider, gp.ModelInfo] | None:
        snapshot = _snapshot()
        for provider_id in ([provider] if provider else []) + [None]:
            try:
                return snapshot.find_provider_model(model, None, provider_id, None)
            except LookupError:
                continue
        return None

    def _genai_entry(
        self, provider: str | None, model: str, service_tier: str | None, when: datetime
    ) -> PriceEntry | None:
        found = self._genai_model(provider, model)
        if found is None:
            return None
        gp_provider, info = found
        context = _price_context(service_tier)
        prices = info.get_prices(when, context)
        rates = {c: _rate_from_genai(getattr(prices, key)) for c, key in _GENAI_KEYS.items()}
        if rates["input"] is None or rates["output"] is None:
            return None
        ref = f"{PRICE_SOURCE}: {gp_provider.id}/{info.id}"
        period = _period_start(info, when)
        if period:
            ref += f" ({period})"
        active = [
            v
            for v in info.price_variants or ()
            if v.when == context and (v.constraint is None or v.constraint.active(when))
        ]
        if context and active:
            ref += " [" + ", ".join(f"{k}={v}" for k, v in context.items()) + "]"
        entry = PriceEntry(ref=ref, source=PRICE_SOURCE, rates=rates)
        terms = batch_terms(provider, service_tier)
        return _with_batch_terms(entry, terms) if terms is not None and not active else entry

    def _rule_entry(self, rule: ModelPriceSpec, base: PriceEntry | None) -> PriceEntry | None:
        label = f"{self.rules_source}: {rule.model}" + (f" ({rule.provider})" if rule.provider else "")
        if rule.from_ is not None or rule.until is not None:
            span = (
                (rule.from_.isoformat() if rule.from_ else "") + ".." + (rule.until.isoformat() if rule.until else "")
            )
            label += f" [{span}]"
        terms = None
        if rule.input is not None:
            rates = rule.rates()
            source = self.rules_source or "price file"
        elif base is not None:
            rates = dict(base.rates)
            source = base.source
            label = f"{base.ref} via {label}"
            terms = base.batch_terms
        else:
            return None
        if rule.discount is not None:
            factor = 1 - rule.discount
            rates = {c: (r.scaled(factor) if r is not None else None) for c, r in rates.items()}
            label += f" -{(rule.discount * 100).normalize():f}%"
        return PriceEntry(ref=label, source=source, rates=rates, batch_terms=terms)

    def resolve(self, provider: str | None, model: str, service_tier: str | None, when: datetime) -> PriceEntry | None:
        key = (provider, model, service_tier, when)
        if key in self._cache:
            return self._cache[key]
        day = when.date() if when != UNDATED_PRICE_TIME else None
        base = self._genai_entry(provider, model, service_tier, when)
        entry = base
        for index, rule in enumerate(self.rules):
            # a discount-only rule cannot price a model without a list price: the next matching rule may
            if rule.matches(provider, model, day) and (rule.input is not None or base is not None):
                self._matched_rules.add(index)
                entry = self._rule_entry(rule, base)
                terms = batch_terms(provider, service_tier)
                if entry is not None and rule.input is not None and terms is not None:
                    entry = _with_batch_terms(entry, terms)  # a price file's rates are standard rates
                break
        self._cache[key] = entry
        return entry

    def unused_rules(self) -> list[str]:
        """Rules of the price file that matched no call so far (likely a typo in `model:`)."""
        return [r.model for i, r in enumerate(self.rules) if i not in self._matched_rules]

    @cached_property
    def known_models(self) -> list[str]:
        names = {m.id for p in _snapshot().providers for m in p.models}
        names.update(r.model for r in self.rules if not any(ch in r.model for ch in "*?["))
        return sorted(names)

    def suggest(self, model: str) -> str | None:
        """A 'did you mean' for an unknown model name."""
        close = difflib.get_close_matches(model.lower(), self.known_models, n=1, cutoff=0.8)
        return close[0] if close else None


@dataclass(frozen=True)
class Unpriced:
    provider: str | None
    model: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    hint: str | None


@dataclass(frozen=True)
class PricingResult:
    table: pa.Table
    entries: list[PriceEntry]
    unpriced: list[Unpriced]
    undated_calls: int
    unused_rules: list[str]


def _key_codes(table: pa.Table) -> tuple[np.ndarray, list[tuple[str | None, str | None, str | None]]]:
    """Per-row index into the distinct (provider, model, service_tier) triples, numbered in order of first
    appearance: each column's codes among its own few values, combined into one number per row (numbered anew by
    first appearance after each column, so that the numbers stay below rows x values)."""
    combined = np.zeros(table.num_rows, dtype=np.int64)
    steps: list[tuple[list[str | None], np.ndarray]] = []  # per column: its values (null last), combined numbers
    for name in ("provider", "model", "service_tier"):
        encoded = pc.dictionary_encode(table[name])
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        values: list[str | None] = [*encoded.dictionary.to_pylist(), None]
        codes = pc.fill_null(encoded.indices, len(values) - 1).to_numpy(zero_copy_only=False)
        renumbered = pc.dictionary_encode(pa.array(combined * len(values) + codes))  # hashing: first appearance
        combined = renumbered.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        steps.append((values, renumbered.dictionary.to_numpy()))
    triples = []
    for code in range(len(steps[-1][1])):
        triple: list[str | None] = []
        for values, numbers in reversed(steps):
            code, index = divmod(int(numbers[code]), len(values))
            triple.append(values[index])
        triples.append((triple[2], triple[1], triple[0]))
    return combined, triples


PRICE_BLOCK_ROWS = 1 << 15
COST_NAMES = (
    "cost_input",
    "cost_cache_read",
    "cost_cache_write",
    "cost_output",
    "cost_request",
    "cost_total",
    "cost_cache_saved",
)


def _block_costs(table: pa.Table, entries: list[PriceEntry], safe_entry: np.ndarray, out: list[np.ndarray]) -> None:
    """Write the COST_NAMES columns of some rows into `out` (one array per name, of those rows): `safe_entry` is
    each row's index into `entries` (any index where the row is not priced: its costs are masked later)."""
    n = table.num_rows
    inp = _tokens(table, "input_tokens")
    read = _tokens(table, "cache_read_tokens")
    write = _tokens(table, "cache_write_tokens")
    write_1h = _tokens(table, "cache_write_1h_tokens")
    output = _tokens(table, "output_tokens")

    def rate_column(component: str) -> np.ndarray:
        if not entries:
            return np.zeros(n)
        rates = [e.rate(component) for e in entries]
        per_entry = np.array([float(r.base) for r in rates])
        column = per_entry[safe_entry]
        depth = max(len(r.tiers) for r in rates)
        for level in range(depth):
            thresholds = np.array([r.tiers[level][0] if level < len(r.tiers) else np.inf for r in rates])
            prices = np.array([float(r.tiers[level][1]) if level < len(r.tiers) else 0.0 for r in rates])
            column = np.where(inp > thresholds[safe_entry], prices[safe_entry], column)
        per_token: np.ndarray = column / 1_000_000
        return per_token

    r_in = rate_column("input")
    cost_input, cost_read, cost_write, cost_output, cost_request, cost_total, cache_saved = out
    np.multiply(inp - read - write, r_in, out=cost_input)
    np.multiply(read, rate_column("cache_read"), out=cost_read)
    np.add((write - write_1h) * rate_column("cache_write"), write_1h * rate_column("cache_write_1h"), out=cost_write)
    np.multiply(output, rate_column("output"), out=cost_output)
    fees = np.array([float(r.base) / 1000 if (r := e.rates.get("requests")) else 0.0 for e in entries])
    cost_request[:] = fees[safe_entry] if entries else 0.0
    np.add(cost_input + cost_read + cost_write + cost_output, cost_request, out=cost_total)
    np.subtract((read + write) * r_in - cost_read, cost_write, out=cache_saved)


def _tokens(table: pa.Table, name: str) -> np.ndarray:
    values: np.ndarray = pc.fill_null(table[name], 0).to_numpy().astype(np.float64)
    return values


def price_table(table: pa.Table, book: PriceBook) -> PricingResult:
    """Fill the cost columns of a step table; unpriced calls keep null costs and are listed."""
    n = table.num_rows
    run = _priceable_run(table)
    if run is not None and run != (0, n):  # e.g. the calls of an ordered table (`steps.order_steps`)
        start, stop = run
        inner = _price_rows(table.slice(start, stop - start), book)
        result = table
        for name in ("price_ref", *COST_NAMES):
            type_ = result.schema.field(name).type
            parts = [nulls(start, type_), *inner.table[name].chunks, nulls(n - stop, type_)]
            column = pa.chunked_array([part for part in parts if len(part)], type_)  # the run is one chunk
            result = result.set_column(result.schema.get_field_index(name), name, column)
        return replace(inner, table=result)
    return _price_rows(table, book)


def _priceable_run(table: pa.Table) -> tuple[int, int] | None:
    """The run of rows that can carry a cost (calls, and rows that report usage), when they are one run (`row_run`);
    outside it every cost is null."""
    can = pc.or_(pc.equal(table["kind"], "llm"), pc.is_valid(table["usage_source"]))
    return row_run(pc.fill_null(can, False).to_numpy(zero_copy_only=False))


def report_order(entries: Iterable[PriceEntry]) -> list[PriceEntry]:
    """The distinct entries in the order reports list them: by price reference, then rates. It does not depend on
    the order the calls were read in, so that a report combined from parts lists the prices as one over the whole."""
    distinct: dict[str, PriceEntry] = {}
    for entry in entries:
        distinct.setdefault(json.dumps(entry.to_json(), sort_keys=True), entry)
    return [distinct[key] for key in sorted(distinct, key=lambda key: (distinct[key].ref, key))]


def _price_rows(table: pa.Table, book: PriceBook) -> PricingResult:
    n = table.num_rows
    triple_idx, triples = _key_codes(table)
    start_us = pc.cast(table["start"], pa.int64()).to_numpy(zero_copy_only=False)
    has_time = ~pc.is_null(table["start"]).to_numpy(zero_copy_only=False)
    start_us = np.where(has_time, np.nan_to_num(start_us.astype(np.float64)), 0).astype(np.int64)
    minutes = start_us // 60_000_000
    day_no = minutes // (24 * 60)
    tod_models = np.array([t[1] is not None and book.time_sensitive(t[0], t[1]) for t in triples], dtype=bool)
    slot = np.where(tod_models[triple_idx] if n else np.zeros(0, bool), (minutes % (24 * 60)) // _SLOT_MINUTES, 0)
    day_key = np.where(has_time, day_no, -(10**6))
    composite = (triple_idx * 10**9 + (day_key + 10**6) * 100 + slot).astype(np.int64)
    uniq, inverse = np.unique(composite, return_inverse=True)
    del start_us, minutes, day_no, slot, day_key, composite

    entries: list[PriceEntry] = []
    entry_index: dict[tuple[str, tuple[tuple[str, Rate | None], ...]], int] = {}
    key_entry = np.full(len(uniq), -1, dtype=np.int64)
    for k, code in enumerate(uniq.tolist()):
        t_idx, rest = divmod(code, 10**9)
        day_part, slot_part = divmod(rest, 100)
        provider, model, tier = triples[t_idx]
        if model is None:
            continue
        day_val = day_part - 10**6
        if day_val == -(10**6):
            when = UNDATED_PRICE_TIME
        else:
            when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day_val, minutes=slot_part * _SLOT_MINUTES)
        entry = book.resolve(provider, model, tier, when)
        if entry is None:
            continue
        identity = (entry.ref, tuple(sorted(entry.rates.items())))
        if identity not in entry_index:
            entry_index[identity] = len(entries)
            entries.append(entry)
        key_entry[k] = entry_index[identity]
    row_entry = key_entry[inverse] if n else np.zeros(0, dtype=np.int64)
    priced = (row_entry >= 0) & ~pc.is_null(table["usage_source"]).to_numpy(zero_copy_only=False)
    safe_entry = np.where(row_entry >= 0, row_entry, 0)

    # the costs block by block into one array per column: the dozen temporaries are those of one block
    costs = [np.zeros(n) for _ in COST_NAMES]
    for lo in range(0, n, PRICE_BLOCK_ROWS):
        hi = min(n, lo + PRICE_BLOCK_ROWS)
        if priced[lo:hi].any():
            _block_costs(table.slice(lo, hi - lo), entries, safe_entry[lo:hi], [c[lo:hi] for c in costs])
    unpriced_rows = ~priced
    result = table
    refs = pa.array([e.ref for e in entries], pa.string())
    price_ref = refs.take(pa.array(safe_entry, mask=unpriced_rows)) if entries else nulls(n, pa.string())
    for name, column in (("price_ref", price_ref), *zip(COST_NAMES, costs, strict=True)):
        if not isinstance(column, pa.Array):  # one chunk per column, as the other columns have
            column = pa.array(column, type=pa.float64(), mask=unpriced_rows)
        result = result.set_column(result.schema.get_field_index(name), name, column)
    del costs

    unpriced = _unpriced(table, (row_entry < 0) & pc.equal(table["kind"], "llm").to_numpy(zero_copy_only=False), book)
    undated = int(np.sum(~has_time & priced))
    return PricingResult(result, entries, unpriced, undated, book.unused_rules())


def _unpriced_hint(model: str | None, suggestion: str | None) -> str:
    if model is None:
        return "the call names no model"
    if suggestion is not None:
        return f"did you mean {suggestion}? otherwise add it to a price file (--prices)"
    return "add it to a price file (--prices)"


def _unpriced(table: pa.Table, mask: np.ndarray, book: PriceBook) -> list[Unpriced]:
    if not mask.any():
        return []
    sub = table.filter(pa.array(mask)).select(["provider", "model", "input_tokens", "output_tokens"])
    grouped = sub.group_by(["provider", "model"], use_threads=False).aggregate(
        [("input_tokens", "sum"), ("output_tokens", "sum"), ([], "count_all")]
    )
    rows = []
    for rec in grouped.to_pylist():
        model = rec["model"]
        suggestion = book.suggest(model) if model else None
        rows.append(
            Unpriced(
                provider=rec["provider"],
                model=model,
                calls=int(rec["count_all"]),
                input_tokens=int(rec["input_tokens_sum"] or 0),
                output_tokens=int(rec["output_tokens_sum"] or 0),
                hint=_unpriced_hint(model, suggestion),
            )
        )
    return sorted(rows, key=lambda u: (-u.calls, u.model or "", u.provider or ""))
