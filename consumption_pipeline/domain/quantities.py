"""Exact quantities (docs/rules.md stage 1): up to 6 decimal places, carried as integer micro-units.

Everything billed is computed on int64 micro-units, so sums never drift; frames at the warehouse
boundary carry float64, which represents every 6-decimal value below 10^9 exactly enough to be
recovered by rounding.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MICRO = 1_000_000
DECIMALS = 6
MAX_QUANTITY = 10**12  # exclusive bound on an event, a catalog value and a window's consumption
# int64 sums of micro-units wrap silently past 2**63. A sum of non-negative values whose float
# sum of units stays below 2**62 micro-units was summed exactly in int64 (the float is far closer).
EXACT_SUM_UNITS = 2**62 / MICRO
_MAX_DIGITS = 12  # digits before the point of a value below MAX_QUANTITY

# A decimal number as people and JSON write it: ASCII digits, optional sign, point and exponent.
_NUMBER = r"^(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?:[eE](?P<exp>[+-]?[0-9]+))?$"
_NON_FINITE = r"(?i)^[+-]?(?:s?nan|inf|infinity)$"


def to_micro(values: pd.Series) -> pd.Series:
    """Boundary float64 (exact to 6 decimals) to int64 micro-units; NA stays NA."""
    floats = values.astype("float64")
    missing = floats.isna()
    if not missing.any():
        return pd.Series(floats_to_micro(floats.to_numpy()), index=values.index)
    micro = pd.Series(floats_to_micro(floats.fillna(0).to_numpy()), index=values.index)
    return micro.astype("Int64").mask(missing)


def from_micro(micro: pd.Series) -> pd.Series:
    """int64 micro-units (NA allowed; a Series or an array) to float64 units."""
    floats = micro.astype("float64") / MICRO
    large = np.asarray(np.abs(floats) >= _SCALABLE / MICRO)
    if large.any():  # rare: computed apart, from the integers
        floats[large] = micro_to_floats(np.asarray(micro)[large].astype(np.int64))
    return floats


# Below 2**53 micro-units one multiplication or division is exact enough to round; beyond, the
# whole units and the fraction are converted apart, so whole and half units stay exact there too.
_SCALABLE = 2**53


def floats_to_micro(floats: np.ndarray) -> np.ndarray:
    """Finite float64 units to int64 micro-units (rounded to the nearest)."""
    scaled = np.round(floats * MICRO)
    micro = scaled.astype(np.int64)
    large = np.abs(scaled) >= _SCALABLE
    if large.any():
        whole = np.trunc(floats[large])
        fraction = np.round((floats[large] - whole) * MICRO).astype(np.int64)
        micro[large] = whole.astype(np.int64) * MICRO + fraction
    return micro


def micro_to_floats(micro: np.ndarray) -> np.ndarray:
    """int64 micro-units to the float64 nearest their value in units."""
    floats = micro / MICRO
    large = np.abs(micro) >= _SCALABLE
    if large.any():
        fraction = np.fmod(micro[large], MICRO)
        floats[large] = ((micro[large] - fraction) // MICRO).astype(np.float64) + fraction / MICRO
    return floats


def micro_to_decimal(micro: int) -> Decimal:
    return Decimal(int(micro)).scaleb(-DECIMALS).normalize()


def parse_quantities(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse text or numbers into micro-units; returns (micro, reason) with reason NA when valid.

    Reasons: missing_quantity, invalid_quantity, negative_quantity, non_finite_quantity,
    too_many_decimals, quantity_too_large. Invalid values get micro 0.
    """
    micro, code = quantity_codes(raw)
    reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    if code.any():
        reason[code > 0] = QUANTITY_REASONS[code[code > 0]]
    return pd.Series(micro, index=raw.index), reason


# Reasons by code (0: valid); where several apply, the parsers below choose the first that does.
QUANTITY_REASONS = np.array([None, "missing_quantity", "non_finite_quantity", "invalid_quantity",
                             "negative_quantity", "too_many_decimals", "quantity_too_large"],
                            dtype=object)  # fmt: skip


def quantity_codes(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """`parse_quantities` as numpy arrays: micro-units and reason codes into QUANTITY_REASONS
    (no text per row: millions of events are parsed at a time)."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return _parse_numbers(raw.astype("float64"))
    return _parse_text(raw.astype("str").where(raw.notna(), ""))


def _parse_numbers(x: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Binary floats (Parquet): valid when x is the float nearest to a 6-decimal number."""
    v = x.to_numpy(dtype="float64", na_value=np.nan)
    missing, finite = np.isnan(v), np.isfinite(v)
    in_range = finite & (np.abs(v) < MAX_QUANTITY)
    micro = floats_to_micro(np.where(in_range, v, 0.0))
    # The first reason that applies; 0 where valid.
    code = np.select(
        [finite & (v >= MAX_QUANTITY), in_range & (v >= 0) & (micro_to_floats(micro) != v),
         finite & (v < 0), ~finite & ~missing, missing],
        [6, 5, 4, 2, 1], 0,
    ).astype(np.int8)  # fmt: skip
    return np.where(code > 0, 0, micro), code


_EXPONENT_DIGITS = 9


def _exponents(exp: pa.Array) -> pa.Array:
    """Exponents as int64. One too long for int64 (1e99999999999999999999) is clamped to
    ±999,999,999: no text of digits is long enough for that to change whether its value is too
    large or has too many decimals."""
    if pc.any(pc.greater(pc.utf8_length(exp), _EXPONENT_DIGITS)).as_py():
        digits = pc.utf8_ltrim(exp, "+-0")
        long = pc.greater(pc.utf8_length(digits), _EXPONENT_DIGITS)
        magnitude = pc.if_else(long, "9" * _EXPONENT_DIGITS, digits)
        magnitude = pc.if_else(pc.equal(magnitude, ""), "0", magnitude)
        exp = pc.if_else(pc.starts_with(exp, "-"), pc.binary_join_element_wise("-", magnitude, ""),
                         magnitude)  # fmt: skip
    return pc.cast(pc.if_else(pc.equal(exp, ""), "0", pc.utf8_ltrim(exp, "+")), pa.int64())


def _parse_text(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Decimal text, exactly: the value is significant digits × 10^power, never a float.

    Computed with pyarrow (regex engine in C++) and numpy: no Python loop over the rows."""
    arrow = pa.array(text, type=pa.string(), from_pandas=True)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    arrow = pc.fill_null(pc.utf8_trim_whitespace(arrow), "")
    parts = pc.extract_regex(arrow, _NUMBER)
    sign, whole, frac, exp = (pc.fill_null(pc.struct_field(parts, [i]), "") for i in range(4))
    digits = pc.utf8_ltrim(pc.binary_join_element_wise(whole, frac, ""), "0")
    significant = pc.utf8_rtrim(digits, "0")
    exponent = _exponents(exp)

    def numbers(values: pa.Array) -> np.ndarray:
        return values.to_numpy(zero_copy_only=False)

    n_significant = numbers(pc.utf8_length(significant))
    power = (
        numbers(exponent)
        - numbers(pc.utf8_length(frac))
        + (numbers(pc.utf8_length(digits)) - n_significant)
    )
    nonzero = n_significant > 0
    has_digits = numbers(pc.utf8_length(whole)) + numbers(pc.utf8_length(frac)) > 0
    number = numbers(pc.is_valid(parts)) & has_digits
    conditions = [  # the first that applies wins
        numbers(pc.equal(arrow, "")),
        numbers(pc.match_substring_regex(arrow, _NON_FINITE)),
        ~number,
        numbers(pc.equal(sign, "-")) & nonzero,
        nonzero & (power < -DECIMALS),
        nonzero & (n_significant + power > _MAX_DIGITS),
    ]
    code = np.select(conditions, np.arange(1, 7, dtype=np.int8), 0).astype(np.int8)
    ok = (code == 0) & nonzero
    mantissa = numbers(pc.cast(pc.if_else(pa.array(ok), significant, "0"), pa.int64()))
    micro = np.where(ok, mantissa * np.power(10, np.where(ok, power + DECIMALS, 0)), 0)
    return micro.astype("int64"), code
