"""Exact quantities (DOMAIN.md stage 1): up to 6 decimal places, carried as integer micro-units.

Everything billed is computed on int64 micro-units, so sums never drift; frames at the warehouse
boundary carry float64, which represents every 6-decimal value below 10^9 exactly enough to be
recovered by rounding.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

MICRO = 1_000_000
DECIMALS = 6
MAX_QUANTITY = 10**12  # units per event or catalog value; keeps window sums far inside int64

_PLAIN = r"\s*\+?(\d+)(?:\.(\d*))?\s*"


def to_micro(values: pd.Series) -> pd.Series:
    """Boundary float64 (exact to 6 decimals) to int64 micro-units; NA stays NA."""
    micro = np.round(values.astype("float64") * MICRO)
    if micro.isna().any():
        return micro.astype("Int64")
    return micro.astype("int64")


def from_micro(micro: pd.Series) -> pd.Series:
    return micro.astype("float64") / MICRO


def micro_to_decimal(micro: int) -> Decimal:
    return Decimal(int(micro)).scaleb(-DECIMALS).normalize()


def parse_quantities(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse text or numbers into micro-units; returns (micro, reason) with reason NA when valid.

    Reasons: missing_quantity, invalid_quantity, negative_quantity, non_finite_quantity,
    too_many_decimals, quantity_too_large.
    """
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return _parse_numbers(raw.astype("float64"))
    return _parse_text(raw.astype("str").where(raw.notna(), ""))


def _parse_numbers(x: pd.Series) -> tuple[pd.Series, pd.Series]:
    reason = pd.Series(pd.NA, index=x.index, dtype="str")
    micro_f = np.round(x * MICRO)
    reason[x.isna()] = "missing_quantity"
    reason[~np.isfinite(x) & x.notna()] = "non_finite_quantity"
    finite = np.isfinite(x)
    reason[finite & (x < 0)] = "negative_quantity"
    reason[finite & (x >= 0) & (micro_f / MICRO != x)] = "too_many_decimals"
    reason[finite & (x > MAX_QUANTITY)] = "quantity_too_large"
    micro = micro_f.where(reason.isna(), 0).astype("int64")
    return micro, reason


def _parse_text(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    parts = text.str.extract(f"^{_PLAIN}$")
    plain = parts[0].notna()
    whole = parts[0].where(plain, "0")
    frac = parts[1].fillna("").where(plain, "").str.rstrip("0")
    reason = pd.Series(pd.NA, index=text.index, dtype="str")
    reason[plain & (frac.str.len() > DECIMALS)] = "too_many_decimals"
    reason[plain & (whole.str.lstrip("0").str.len() > 12)] = "quantity_too_large"
    ok = plain & reason.isna()
    micro = pd.Series(0, index=text.index, dtype="int64")
    if ok.any():
        padded = frac[ok].str.ljust(DECIMALS, "0")
        micro[ok] = whole[ok].astype("int64") * MICRO + padded.replace("", "0").astype("int64")
    over = ok & (micro > MAX_QUANTITY * MICRO)
    reason[over] = "quantity_too_large"
    rest = ~plain  # rare spellings (exponents, signs, words) go through Decimal one by one
    for idx in text.index[rest]:
        micro[idx], reason[idx] = _parse_one(text[idx])
    micro[reason.notna()] = 0
    return micro, reason


def _parse_one(text: str) -> tuple[int, str | None]:
    if not text.strip():
        return 0, "missing_quantity"
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return 0, "invalid_quantity"
    if not value.is_finite():
        return 0, "non_finite_quantity"
    if value < 0:
        return 0, "negative_quantity"
    if value > MAX_QUANTITY:
        return 0, "quantity_too_large"
    scaled = value.scaleb(DECIMALS)
    if scaled != scaled.to_integral_value():
        return 0, "too_many_decimals"
    return int(scaled), None
