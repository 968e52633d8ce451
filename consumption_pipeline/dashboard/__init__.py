"""The unified usage dashboard: consumption, negotiated rates and grant balances per account and
per asset, read from the warehouse of docs/rules.md "Outputs" (never written)."""
