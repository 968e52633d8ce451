"""Closing a billing period (docs/rules.md "Time"): when a period closes (dates.py), the export of its
final liable summaries to the billing outbox (outbox.py), the register of closed periods
(register.py) and the close itself (close.py).

A period closes `grace_days` after its end (October, with 3 grace days, on 4 November). Closing it
writes its final liable summaries once to `<outbox>/<YYYY-MM>/`:

- `liable_summaries.csv` and `liable_summaries.json`: one line per liable summary, sorted by
  account, asset and resource; quantities and money as decimal text (money at the currency's minor
  unit), so that no consumer reads them through a float; `line_type` tells the period's own usage
  (`usage`) from the restatement of an earlier period booked into it (`adjustment`);
- `manifest.json`: the period, the date the close was judged on, the row count, the total amount
  per currency, the size and SHA-256 of each file, and `checksum`, the SHA-256 of the CSV.

The files are written to a hidden staging folder and renamed into place in one step, so a crash
leaves the complete folder or none, and a folder in place is never written again. The close is
then recorded in the warehouse table `period_closures`, which is what makes a period closed: a
second close is an error naming the period. A crash between the rename and the record is
completed by the next attempt, which finds the folder already holding exactly those lines.

`consumption-pipeline close --period YYYY-MM` closes a period by hand (cli/close.py); defs/close.py
is the period-close job it runs.
"""
