"""Stage 1 assets: accepted and quarantined usage events of a billing period.

The ingest also runs the input checks of the period: the catalog files against their contract,
the accepted events against theirs, and the events' conservation law. They block: when one
fails, no stage downstream of `usage_events` runs for the period.
"""

from collections.abc import Generator, Iterable, Iterator

import dagster as dg
import pandas as pd

from consumption_pipeline.audit import check_passes, fingerprints
from consumption_pipeline.defs.lineage import alongside, output_digests, record_lineage
from consumption_pipeline.defs.metadata import (
    PREVIEW_ROWS,
    check_result,
    check_spec,
    table_metadata,
)
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource, built_catalog
from consumption_pipeline.domain.catalog import REQUIRED, Catalog, CatalogError
from consumption_pipeline.domain.ingest import Ingestion, PartFacts, concat_events
from consumption_pipeline.quality.conservation import events_reconcile
from consumption_pipeline.quality.inputs import check_catalog, check_name
from consumption_pipeline.quality.outcome import Outcome
from consumption_pipeline.quality.usage import AcceptedUsage, quarantine_explained
from consumption_pipeline.storage import sources
from consumption_pipeline.storage.source_index import SourceIndex
from consumption_pipeline.storage.sources import catalog_digest
from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import Warehouse


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    checks = [
        *(check_spec(check_name(f), "usage_events", periods, True,
                     f"{f} meets the input contract (columns, types, keys, references, rates)")
          for f in REQUIRED),
        check_spec("accepted_usage", "usage_events", periods, True,
                   "Accepted events: keys set, unique event_id, 6-decimal quantity >= 0, usage "
                   "date in the period, known account, resource and asset."),
        check_spec("events_reconcile", "usage_events", periods, True,
                   "events read = accepted + duplicates + quarantined + other periods"),
        check_spec("quarantine_explained", "quarantined_events", periods, False,
                   "Every quarantined event has a reason, a source file and a row number."),
    ]  # fmt: skip

    @dg.multi_asset(
        name="ingest",
        specs=[
            dg.AssetSpec("usage_events", deps=["usage_files", "catalog"], group_name="lifecycle",
                         description="Accepted usage events of the period, deduplicated by event_id."),
            dg.AssetSpec("quarantined_events", deps=["usage_files", "catalog"], group_name="lifecycle",
                         description="Events that cannot be billed, each with its reason."),
        ],
        partitions_def=periods,
        check_specs=checks,
    )  # fmt: skip
    def ingest_events(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        period = pd.Timestamp(context.partition_key)
        with warehouse.holding(context) as store:
            catalog_files = source.catalog_files()
            catalog = yield from _built(catalog_files)
            # rows as read: the reconciliation's own count
            files = _Counted(source.event_files(SourceIndex(store.lake)))
            # The catalog's suites run beside the first passes over the events (file reads and
            # hashing let go of the interpreter); their outcomes are reported with the others.
            run, catalog_checks = alongside(
                lambda: _catalog_checks(store, context.run.run_id, catalog_files),
                lambda: Ingestion(files, catalog, period, source.billing_timezone),
            )
            event_files = {"event_files": fingerprints.named_digest(files.digests())}
            # What the accepted events are made of: their suite's outcome is remembered by it.
            made_of = {**event_files, "catalog": catalog_digest(catalog_files),
                       "billing_timezone": source.billing_timezone,
                       "suite": "accepted_usage", "period": context.partition_key}  # fmt: skip
            known = check_passes.remembered(store.engine, made_of)
            accepted = _Accepted(None if known else AcceptedUsage(catalog, period))
            # Accepted events go to the lake part by part as they are placed, each part checked
            # and hashed for the digest as it goes by; then the SQL tables, in one transaction.
            store.write_batches(context.partition_key, "usage_events", accepted.taking(run))
            quarantined = run.quarantined_events
            sql = {"quarantined_events": quarantined,
                   "ingest_reconciliation": pd.DataFrame([run.reconciliation])}  # fmt: skip

            def reread() -> Iterator[pd.DataFrame]:
                columns = ["source_file", "row_number", "event_id"]
                return store.read_batches("usage_events", context.partition_key, columns)

            def write_and_check() -> list[Outcome]:
                store.replace_period(context.partition_key, sql)
                usage_checks = known or check_passes.checked(
                    store.engine, made_of, context.run.run_id,
                    lambda: [accepted.suite.outcome(reread)],
                )  # fmt: skip
                return [*catalog_checks, *usage_checks,
                        events_reconcile(files.rows, accepted.rows, quarantined,
                                         run.reconciliation)]  # fmt: skip

            outcomes, digests = alongside(lambda: output_digests(sql), write_and_check)
            digests["usage_events"] = accepted.digest()
            version = record_lineage(context, source, store, sql, event_files, digests,
                                     rows={"usage_events": accepted.rows})  # fmt: skip
        reasons = quarantined["reason"].value_counts().to_dict()
        yield dg.MaterializeResult(asset_key="usage_events", data_version=version, metadata=table_metadata(
            accepted.head(), accepted.rows, **{k: int(v) for k, v in run.reconciliation.items()},
            **{"dagster/uri": store.lake.uri("usage_events", context.partition_key)}))  # fmt: skip
        yield dg.MaterializeResult(asset_key="quarantined_events", data_version=version, metadata=table_metadata(
            quarantined, **{f"reason/{k}": int(v) for k, v in reasons.items()}))  # fmt: skip
        for outcome in outcomes:
            yield check_result("usage_events", outcome, blocking=True)
        outcome = quarantine_explained(quarantined)
        yield check_result("quarantined_events", outcome, blocking=False)

    return ingest_events


def _catalog_checks(store: Warehouse, run_id: str, files: dict[str, pd.DataFrame]) -> list[Outcome]:
    """The catalog's outcomes, remembered if these files passed before."""
    suite = {"suite": "catalog", "catalog": catalog_digest(files)}
    return check_passes.checked(store.engine, suite, run_id, lambda: check_catalog(files))


class _Accepted:
    """The accepted events as they go to the lake, part by part: counted, hashed for their
    digest, their first rows kept for the preview, and checked by `suite` (none: its outcome is
    remembered) CHECK_ROWS at a time. No more is kept."""

    CHECK_ROWS = 1 << 22  # Great Expectations costs ~0.15 s a validation, whatever its rows

    def __init__(self, suite: AcceptedUsage | None):
        self.suite, self.rows = suite, 0
        self._hashes: list = []
        self._columns, self._heads, self._unchecked = "", [], []

    def taking(self, parts: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            self._take(part)
            yield part
        if not self._hashes:  # no event: the checks and the digest see an empty table
            self._take(concat_events([]))
        self._check()

    def _take(self, part: pd.DataFrame) -> None:
        self.rows += len(part)
        self._columns, hashes = fingerprints.row_hashes(part, TABLES["usage_events"])
        self._hashes.append(hashes)
        shown = sum(len(h) for h in self._heads)
        self._heads.append(part.head(max(PREVIEW_ROWS - shown, 0)))
        if self.suite is not None:
            self._unchecked.append(part)
            if sum(len(p) for p in self._unchecked) >= self.CHECK_ROWS:
                self._check()

    def _check(self) -> None:
        if self._unchecked:
            self.suite.add(concat_events(self._unchecked))
            self._unchecked = []

    def digest(self) -> str:
        return fingerprints.rows_digest(self._columns, *self._hashes)

    def head(self) -> pd.DataFrame:
        return concat_events(self._heads)


class _Counted:
    """The event files, counting the rows of their last reading: those of the batches read,
    and those the facts give for the batches left unread."""

    def __init__(self, files: sources.EventFiles):
        self._files, self.rows = files, 0

    def facts(self) -> list[PartFacts]:
        return self._files.facts()

    def digests(self) -> dict[str, str]:
        return self._files.digests()

    def parts(
        self, numbers: list[int], columns: list[str] | None = None
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        rows = self._unread(numbers)
        for number, frame in self._files.parts(numbers, columns):
            rows += len(frame)
            yield number, frame
        self.rows = rows

    def placed(self, numbers: list[int], place) -> Iterator[tuple[int, object]]:
        rows = self._unread(numbers)
        for read, placed in self._files.placed(numbers, place):
            rows += read
            yield read, placed
        self.rows = rows

    def _unread(self, numbers: list[int]) -> int:
        wanted = set(numbers)
        return sum(f.rows for n, f in enumerate(self.facts()) if n not in wanted)


def _built(files: dict[str, pd.DataFrame]) -> Generator[dg.AssetCheckResult, None, Catalog]:
    """The catalog. One that cannot be built fails its file's check (the results are reported
    before the error stops the step)."""
    try:
        return built_catalog(files)
    except CatalogError as error:
        for outcome in check_catalog(files, error):
            yield check_result("usage_events", outcome, blocking=True)
        raise
