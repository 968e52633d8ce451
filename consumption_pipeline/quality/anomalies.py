"""Volume anomalies: a warning, never a block, when an account's usage of a resource falls to
zero or changes by more than a factor against the previous period.

Usage is the period's consumption of each (account, usage resource), in the resource's own unit,
summed over the rated usage summaries. Only pairs with usage in the previous period are compared:
a new account or resource has nothing to change from.
"""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.domain.quantities import to_micro
from consumption_pipeline.quality.outcome import Outcome, verdict

KEYS = ["account_id", "usage_resource_id"]


def volume_anomalies(current: pd.DataFrame, previous: pd.DataFrame, factor: float) -> Outcome:
    """Compare two periods of rated usage (`consumption` per summary) by account and resource."""
    if factor <= 1:
        raise ValueError(f"anomaly factor must be above 1, got {factor}")
    now, before = _usage(current), _usage(previous)
    pairs = pd.concat([before.rename("previous"), now.rename("current")], axis=1)
    pairs = pairs[pairs["previous"] > 0].fillna(0).reset_index()
    ratio = pairs["current"] / pairs["previous"]
    fell = pairs["current"].eq(0)
    changed = ~fell & ((ratio > factor) | (ratio < 1 / factor))
    flagged = pairs[fell | changed].assign(change=ratio[fell | changed].round(3))
    flagged[["previous", "current"]] = flagged[["previous", "current"]] / 1e6
    flagged["problem"] = [
        f"account {r.account_id!r}, {r.usage_resource_id}: usage "
        + ("fell to zero" if r.current == 0 else f"changed {r.change:g}x")
        + f" ({r.previous:g} in the previous period, {r.current:g} now)"
        for r in flagged.itertuples()
    ]
    accounts = sorted(flagged["account_id"].unique())
    compared = f"{len(pairs)} account usages against the previous period (factor {factor:g})"
    return verdict(
        "volume_anomalies", flagged, compared, compared=len(pairs),
        accounts=", ".join(accounts) if accounts else "none",
    )  # fmt: skip


def _usage(rated: pd.DataFrame) -> pd.Series:
    micro = to_micro(rated["consumption"].astype("float64")).astype("int64")
    return rated[KEYS].assign(micro=micro).groupby(KEYS)["micro"].sum().astype("float64")
