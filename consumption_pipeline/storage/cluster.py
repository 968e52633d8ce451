"""Work spread over a Dask cluster (`distributed`) when a scheduler address is configured.

With an address (CONSUMPTION_DASK_ADDRESS, or --dask on `run` and `close`), the event-level work
that stands alone file by file or batch by batch runs as tasks on the cluster: reading each event
file for its entry in the source index, reading and placing each batch of the period, and summing
each part of the accepted events by window for the rating; without one it runs here, in the same
functions: there is one implementation of every rule. The tasks are
idempotent (an index entry is written beside its final name and moved into place; a placed batch
is a value), so the cluster runs a task again when its worker is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
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
    return list(ordered(function, items, address))


def ordered(function: Callable[[T], U], items: Sequence[T], address: str) -> Iterator[U]:
    """`function` of each item, in order, as the consumer asks for them: here one at a time, or
    as tasks on the cluster at `address`, all submitted at once and taken back one by one (a
    result leaves the cluster once it is taken)."""
    if not address or not items:
        yield from map(function, items)
        return
    from distributed import Client  # deferred: only a run with a cluster pays for it

    with Client(address, timeout=CONNECT_SECONDS, set_as_default=False) as client:
        futures = client.map(function, items, pure=False)
        for future in futures:
            yield future.result()
            future.release()


def reachable(address: str) -> None:
    """Connect to the scheduler once; one that does not answer is an OSError naming it."""
    from distributed import Client  # deferred, as in `mapped`

    try:
        Client(address, timeout=CONNECT_SECONDS, set_as_default=False).close()
    except (OSError, TimeoutError) as error:
        raise OSError(f"no Dask scheduler answers at {address}: {error}") from None
