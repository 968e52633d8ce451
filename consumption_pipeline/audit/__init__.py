"""Audit: lineage of every stage's rows, traces of invoice lines, forecasts, ad hoc summaries and
restatements of closed periods."""
