"""Work spread over a Dask cluster (`distributed`) when a scheduler address is configured.

With an address (CONSUMPTION_DASK_ADDRESS, or --dask on `run` and `close`), the event-level work
that stands alone file by file, reading each event file for its entry in the source index, runs
as tasks on the cluster; without one it runs here, in the same functions: there is one
implementation of every rule. The tasks are idempotent (an index entry is written beside its
final name and moved into place), so the cluster runs a task again when its worker is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

T, U = TypeVar("T"), TypeVar("U")

CONNECT_SECONDS = 5  # before an unreachable scheduler stops the command or the step
_ADDRESS = re.compile(r"(?:(?:tcp|tls)://)?[\w.\-\[\]:]+:\d{1,5}")


def dask_address(text: str) -> str:
    """A scheduler address such as tcp://10.0.0.5:8786 (empty: no cluster)."""
    if text and not _ADDRESS.fullmatch(text):
        raise ValueError(f"expected a Dask scheduler address such as tcp://10.0.0.5:8786, "
                         f"got {text!r}")  # fmt: skip
    return text


def mapped(function: Callable[[T], U], items: Sequence[T], address: str) -> list[U]:
    """`function` of each item, in order: as tasks on the cluster at `address`, or here."""
    if not address or not items:
        return [function(item) for item in items]
    from distributed import Client  # deferred: only a run with a cluster pays for it

    with Client(address, timeout=CONNECT_SECONDS, set_as_default=False) as client:
        return client.gather(client.map(function, items, pure=False))


def reachable(address: str) -> None:
    """Connect to the scheduler once; one that does not answer is an OSError naming it."""
    from distributed import Client  # deferred, as in `mapped`

    try:
        Client(address, timeout=CONNECT_SECONDS, set_as_default=False).close()
    except (OSError, TimeoutError) as error:
        raise OSError(f"no Dask scheduler answers at {address}: {error}") from None
