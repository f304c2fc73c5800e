"""Sums that do not depend on the order their terms are added in, nor on how the terms are split into parts.

A float sum depends on the order of its additions: the sum of 1M call costs read in one table and the sum of its
parts' sums differ in the 8th decimal, so a report combined from parts (a staged analyze, a dataset's units) would
not be the report of the whole, byte for byte. Here each term is rounded to a multiple of 2**-60 (about 8.7e-19,
finer than a double's own precision for any term above 2**-8) and the multiples are added as integers, which is
exact in any order; the float of a sum is the nearest double to the exact sum (`Exact.value`).

Each term is split in three digits (`_digits`): whole 2**-4 units, then two of 28 bits. `np.bincount` adds a block of
2**16 digits of a kind as floats, which stay whole numbers below 2**53 and so exact, and the block sums are added as
int64: the whole digits without overflow to a sum of 2**58 dollars, the others over 2**35 terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FRACTION_BITS = 60
_WHOLE_BITS = 4
_PART_BITS = 28
PARTS = ("whole", "mid", "low")
"""The digits each term is split in (`_digits`)."""


@dataclass(frozen=True)
class Exact:
    """A sum held exactly, in units of 2**-FRACTION_BITS; `+` keeps it exact, `value` gives its float."""

    units: int

    def __add__(self, other: Exact) -> Exact:
        return Exact(self.units + other.units)

    @property
    def value(self) -> float:
        return self.units / (1 << FRACTION_BITS)  # int / int: the nearest double to the exact quotient


def _digits(values: np.ndarray) -> list[np.ndarray]:
    """`PARTS` of each finite value (|value| < 2**58) as float64 arrays of whole numbers: whole 2**-4 units, then
    the rest in two 28-bit digits (|digit| <= 2**28), each with the value's sign. Every step is exact but the
    rounding of the last digit to the 2**-60 grid (half away from zero on a tie, so that -x splits as -(x))."""
    negative = values < 0
    signed = bool(negative.any())
    scaled = (np.abs(values) if signed else values) * float(1 << _WHOLE_BITS)
    whole = np.floor(scaled)
    rest = (scaled - whole) * float(1 << _PART_BITS)  # exact: for x >= 0, x - floor(x) drops bits and adds none
    mid = np.floor(rest)
    low = np.floor((rest - mid) * float(1 << _PART_BITS) + 0.5)  # exact: (rest - mid) * 2**28 < 2**28
    digits = [whole, mid, low]
    if signed:
        for digit in digits:
            np.negative(digit, out=digit, where=negative)
    return digits


BLOCK_ROWS = 1 << 16
"""Rows `group_sums` adds at a time: the float sums of a block's 28-bit digits stay whole numbers below 2**53."""


def group_sums(ids: np.ndarray, values: np.ndarray, groups: int) -> list[Exact | None]:
    """The exact sum of `values` (float64, NaN for a missing value) per group `ids` (0 <= id < groups): None for a
    group without a value. Blocks of BLOCK_ROWS rows keep memory and every float sum exact."""
    acc = np.zeros((len(PARTS), groups), dtype=np.int64)
    present = np.zeros(groups, dtype=np.int64)
    for lo in range(0, len(values), BLOCK_ROWS):
        block, where = values[lo : lo + BLOCK_ROWS], ids[lo : lo + BLOCK_ROWS]
        known = ~np.isnan(block)
        present += np.bincount(where, weights=known, minlength=groups).astype(np.int64)
        for k, digit in enumerate(_digits(np.where(known, block, 0.0))):
            if k == 0 and float(np.abs(digit).sum()) >= 2.0**53:  # whole digits too big to add as floats
                np.add.at(acc[0], where, digit.astype(np.int64))
                continue
            acc[k] += np.bincount(where, weights=digit, minlength=groups).astype(np.int64)
    sums: list[Exact | None] = []
    for g in range(groups):
        sums.append(Exact(join([int(acc[k, g]) for k in range(len(PARTS))])) if present[g] else None)
    return sums


def group_counts(ids: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """Exact per-group sums of int64 values (e.g. token counts)."""
    out = np.zeros(groups, dtype=np.int64)
    for lo in range(0, len(values), BLOCK_ROWS):
        block, where = values[lo : lo + BLOCK_ROWS], ids[lo : lo + BLOCK_ROWS]
        if len(block) and int(np.abs(block).max()) < (1 << 36):  # float sums of the block stay below 2**53
            out += np.rint(np.bincount(where, weights=block.astype(np.float64), minlength=groups)).astype(np.int64)
        else:
            np.add.at(out, where, block)
    return out


def join(sums: list[int]) -> int:
    """The units (2**-60) of a sum from the sums of each of its terms' digits."""
    whole, mid, low = (int(s) for s in sums)
    return (whole << (2 * _PART_BITS)) + (mid << _PART_BITS) + low


def exact_sum(values: np.ndarray | pa.Array | pa.ChunkedArray) -> Exact | None:
    """The exact sum of the non-null, non-NaN values; None when there is none (an unknown sum, not zero)."""
    if not isinstance(values, np.ndarray):
        values = pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False) if len(values) else np.zeros(0)
    values = np.asarray(values, dtype=np.float64)
    return group_sums(np.zeros(len(values), dtype=np.int64), values, 1)[0]


def total(values: np.ndarray | pa.Array | pa.ChunkedArray) -> float | None:
    """`exact_sum` as a float (None when no value is known)."""
    found = exact_sum(values)
    return found.value if found is not None else None


def add(a: Any, b: Any) -> Any:
    """Sum where null means unknown: unknown + x = x, unknown + unknown = unknown."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def add_fields(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise sums (`add`) of dicts with the same numeric fields (the first dict's key order)."""
    out = dict(rows[0])
    for row in rows[1:]:
        for name, value in row.items():
            out[name] = add(out[name], value)
    return out


def floats(obj: Any) -> Any:
    """`obj` with every `Exact` replaced by its float (through dicts, lists and tuples)."""
    if isinstance(obj, Exact):
        return obj.value
    if isinstance(obj, dict):
        return {k: floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [floats(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(floats(v) for v in obj)
    return obj
