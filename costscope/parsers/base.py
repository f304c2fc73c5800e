"""What every parser shares: the Parser protocol, the skip ledger, the row buffer and value coercions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, TypeAlias, TypeVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..io import UTF8_BOM, InputFile, ReadError, iter_lines
from ..schema import STEP_SCHEMA, batch_from_rows, empty_table, nulls

BATCH_ROWS = 65_536
R = TypeVar("R")


class RecordError(ValueError):
    """A record that cannot be used; its message is the reason shown to the user."""


@dataclass
class Skips:
    """Every record a run did not use, counted by reason, with the first few examples.

    In strict mode the first skip raises instead, so nothing is ever dropped silently.
    """

    strict: bool = False
    max_examples: int = 5
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    first: tuple[str, int, str] | None = None
    """(source, line, reason) of the first skip, so a cached result can fail `--strict` the same way."""

    def skip(self, source: str, line: int, reason: str) -> None:
        where = f"{source}:{line}"
        if self.strict:
            raise InputError(f"{where}: {reason}", hint="drop --strict to skip bad records and report them")
        if self.first is None:
            self.first = (source, line, reason)
        self.counts[reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{where}: {reason}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class ParseContext:
    skips: Skips
    batch_rows: int = BATCH_ROWS
    records: Counter[str] = field(default_factory=Counter)
    """Records read per input name (lines or objects, used or skipped)."""
    notes: Counter[str] = field(default_factory=Counter)
    """Per-run observations worth a warning (e.g. calls without timestamps), counted."""

    def read_error(self, error: ReadError) -> None:
        """A file that stopped being readable part-way: a counted skip; the lines before it stand."""
        self.skips.skip(error.source, error.line, error.reason)

    def lines(self, source: InputFile) -> Iterator[tuple[int, bytes]]:
        """The non-blank lines of `source`, each counted as one record read."""
        for lineno, raw in iter_lines(source, self.read_error):
            self.records[source.name] += 1
            yield lineno, raw

    def records_of(self, source: InputFile, build: Callable[[Any, int], R]) -> Iterator[tuple[int, R]]:
        """Each line parsed as JSON and turned into `build(obj, lineno)`; malformed JSON and RecordError are
        counted skips with file and line."""
        for lineno, raw in self.lines(source):
            try:
                result = build(orjson.loads(raw), lineno)
            except orjson.JSONDecodeError as exc:
                self.skips.skip(source.name, lineno, f"malformed JSON ({exc.args[0].split(':')[0]})")
                continue
            except RecordError as exc:
                self.skips.skip(source.name, lineno, str(exc))
                continue
            yield lineno, result


class Parser(Protocol):
    """A trace format. Optional attributes: `splittable` (True: its records stand alone on their lines, so a big
    file may be parsed in parts) and `sniffs_first_lines` (True: `sniff` reads only the first SNIFF_LINES lines of
    the prefix, so that a short prefix holding them decides; see `parsers.detect`)."""

    name: str
    description: str

    def sniff(self, prefix: bytes) -> bool:
        """True when the first bytes of a file look like this format."""
        ...

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[Piece]:
        """Yield record batches in STEP_SCHEMA (or row dicts, see `Piece`); report unusable records to
        `ctx.skips`."""
        ...


@dataclass
class Columns:
    """Rows as one list per STEP_SCHEMA column (a column not named is null); the columns named in `iso_times`
    hold ISO-8601 UTC strings that Arrow parses, instead of microseconds."""

    values: dict[str, list[Any]]
    rows: int
    iso_times: tuple[str, ...] = ()

    def extend(self, other: Columns) -> bool:
        """Append `other`'s rows when it has the same columns (False, unchanged, when it does not)."""
        if other.values.keys() != self.values.keys() or other.iso_times != self.iso_times:
            return False
        for name, column in self.values.items():
            column.extend(other.values[name])
        self.rows += other.rows
        return True

    def batch(self) -> pa.RecordBatch:
        arrays = []
        for f in STEP_SCHEMA:
            column = self.values.get(f.name)
            if column is None:
                arrays.append(nulls(self.rows, f.type))
            elif f.name in self.iso_times:
                arrays.append(pc.cast(pa.array(column, pa.string()), f.type))
            else:
                arrays.append(pa.array(column, type=f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=STEP_SCHEMA)


class Held(Protocol):
    """Rows of many files held together outside Python objects (a file's piece is a `Slice` of them)."""

    def batch(self, ranges: list[tuple[int, int]]) -> pa.RecordBatch:
        """The rows of `ranges` ((start, stop) pairs), in that order, as one STEP_SCHEMA batch; asked once."""
        ...


@dataclass
class Slice:
    """Rows [start, stop) of `held`: a file's rows."""

    held: Held
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class _SliceRun:
    """Consecutive slices of one held: the next `rows` rows of its batch, which `table_of` asked for in the order
    of its slices (files may be parsed in another order than the one their rows are wanted in)."""

    held: Held
    rows: int


Piece: TypeAlias = "pa.RecordBatch | list[dict[str, Any]] | Columns | Slice"
"""What a parser yields: a record batch in STEP_SCHEMA, or rows as dicts (missing keys are null) or as columns,
which the caller turns into Arrow together with the rows of other files (one conversion per chunk of files), or a
slice of rows held in Arrow buffers for many files at once."""


def table_of(pieces: list[Piece]) -> pa.Table:
    """The rows of `pieces`, in order, as one STEP_SCHEMA table (consecutive row dicts, consecutive columns or
    consecutive slices of held rows converted at once; the slices of one held rows made in one batch)."""
    batches: list[pa.RecordBatch] = []
    pending: list[dict[str, Any]] | Columns | _SliceRun | None = None
    held_batches = _held_batches(pieces)

    def flush() -> None:
        if isinstance(pending, list):
            batches.append(batch_from_rows(pending))
        elif isinstance(pending, _SliceRun):
            batch, at = held_batches[id(pending.held)]
            batches.append(batch.slice(at, pending.rows))
            held_batches[id(pending.held)] = (batch, at + pending.rows)
        elif pending is not None:
            batches.append(pending.batch())

    for piece in pieces:
        if isinstance(piece, list) and isinstance(pending, list):
            pending.extend(piece)
        elif isinstance(piece, Columns) and isinstance(pending, Columns) and pending.extend(piece):
            pass
        elif isinstance(piece, Slice) and isinstance(pending, _SliceRun) and pending.held is piece.held:
            pending.rows += piece.rows
        elif isinstance(piece, list | Columns | Slice):
            flush()
            pending = (
                list(piece)
                if isinstance(piece, list)
                else _SliceRun(piece.held, piece.rows)
                if isinstance(piece, Slice)
                else Columns({k: list(v) for k, v in piece.values.items()}, piece.rows, piece.iso_times)
            )
        else:
            flush()
            pending = None
            batches.append(piece)
    flush()
    return pa.Table.from_batches(batches, schema=STEP_SCHEMA) if batches else empty_table()


def _held_batches(pieces: list[Piece]) -> dict[int, tuple[pa.RecordBatch, int]]:
    """For each held rows that `pieces` slice: (its batch of those slices' rows in their order, 0)."""
    wanted: dict[int, tuple[Held, list[tuple[int, int]]]] = {}
    for piece in pieces:
        if isinstance(piece, Slice):
            ranges = wanted.setdefault(id(piece.held), (piece.held, []))[1]
            if ranges and ranges[-1][1] == piece.start:  # contiguous: one range
                ranges[-1] = (ranges[-1][0], piece.stop)
            else:
                ranges.append((piece.start, piece.stop))
    return {key: (held.batch(ranges), 0) for key, (held, ranges) in wanted.items()}


def piece_rows(piece: Piece) -> int:
    if isinstance(piece, list):
        return len(piece)
    return piece.rows if isinstance(piece, Columns | Slice) else piece.num_rows


class RowBuffer:
    """Accumulates rows column-wise and hands out STEP_SCHEMA batches of bounded size."""

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        self.batch_rows = batch_rows
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> pa.RecordBatch | None:
        self.rows.append(row)
        return self.flush() if len(self.rows) >= self.batch_rows else None

    def flush(self) -> pa.RecordBatch | None:
        if not self.rows:
            return None
        batch = batch_from_rows(self.rows)
        self.rows = []
        return batch


SNIFF_LINES = 5


def prefix_values(prefix: bytes, lines: int = SNIFF_LINES) -> Iterator[Any]:
    """The JSON values among the first few lines of a file prefix, for sniffing (a UTF-8 BOM tolerated)."""
    return iter(_prefix_values(prefix, lines))


@lru_cache(maxsize=4)
def _prefix_values(prefix: bytes, lines: int) -> tuple[Any, ...]:
    """Parsed once per file however many sniffers ask (they only read the values)."""
    values = []
    for raw in prefix.removeprefix(UTF8_BOM).split(b"\n", lines)[:lines]:
        if not raw.strip():
            continue
        try:
            values.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            continue
    return tuple(values)


def prefix_objects(prefix: bytes, lines: int = SNIFF_LINES) -> Iterator[dict[str, Any]]:
    """The JSON objects among the first few lines of a file prefix."""
    return (value for value in prefix_values(prefix, lines) if isinstance(value, dict))


def first_object(prefix: bytes, lines: int = SNIFF_LINES) -> dict[str, Any] | None:
    """The first JSON value among the first few lines of a file prefix, when it is an object."""
    value = next(prefix_values(prefix, lines), None)
    return value if isinstance(value, dict) else None


MAX_TOKENS = 2**40
"""A count above this (about 10^12 tokens in one call) is corrupt, not big: it would overflow int64 sums."""
MIN_US, MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999
"""Microsecond timestamps of years 1 to 9999, the range Arrow and datetime both hold."""


def token_count(value: Any, name: str) -> int | None:
    """A token count as a non-negative int; None when absent; RecordError when unusable."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{name} is not a number: {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise RecordError(f"{name} is not a whole number: {value!r}")
        value = int(value)
    if value < 0:
        raise RecordError(f"{name} is negative: {value}")
    if value > MAX_TOKENS:
        raise RecordError(f"{name} is too large to be real: {value:.3g}")
    return int(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_us(value: Any) -> int | None:
    """Microseconds since the epoch (UTC), range-checked; see `_timestamp_us`."""
    micros = _timestamp_us(value)
    if micros is not None and not MIN_US <= micros <= MAX_US:
        raise RecordError(f"timestamp is out of range: {value!r}")
    return micros


def _timestamp_us(value: Any) -> int | None:
    """Microseconds since the epoch (UTC) from an ISO-8601 string or epoch s/ms/us/ns number.

    Naive ISO strings are taken as UTC. Returns None when absent; RecordError when unparseable.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"timestamp is not a time: {value!r}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise RecordError(f"timestamp is not a time: {value!r}")
        magnitude = abs(value)
        if magnitude < 1e11:
            return round(value * 1_000_000)
        if magnitude < 1e14:
            return round(value * 1_000)
        if magnitude < 1e17:
            return round(value)
        return round(value / 1_000)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise RecordError(f"timestamp is not ISO-8601: {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise RecordError(f"timestamp is not a time: {value!r}")


def text_or_none(value: Any) -> str | None:
    """An identifier as text (numbers become their decimal form); None for absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise RecordError(f"expected a string, got {type(value).__name__}")


def first_key(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The value of the first key of `keys` present (and not null) in `obj`."""
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None
