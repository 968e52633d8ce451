"""Data-quality gates of docs/rules.md: the input contract as expectation suites (catalog files,
accepted usage), the conservation laws and volume anomalies, as pure functions over frames that
return an `Outcome` (passed or not, and every failing row). `defs/` runs them as asset checks."""
