"""64-bit hashes of values, vectorized in numpy: splitmix64's mixer over 8-byte words.

Used to find the event ids that repeat among millions (the ingest) and to fingerprint frames
(lineage). A hash only narrows the search: equal hashes are confirmed on the values themselves
wherever a decision depends on them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
NULL_HASH = np.uint64(2**64 - 1)  # a missing text: no string has this length
_BLOCK_BYTES = 1 << 26  # bounds the fixed-width block text is hashed in


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer (uint64 arithmetic wraps): each input bit flips ~half the output."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def text_hashes(text: pa.Array) -> np.ndarray:
    """One hash per string of its length and bytes (read as 8-byte words of a fixed-width block);
    a missing string hashes to NULL_HASH."""
    text = text.cast(pa.large_string())
    hashes = np.empty(len(text), dtype=np.uint64)
    width = max(8, int(pc.max(pc.binary_length(text)).as_py() or 0))
    width += -width % 8
    step = max(1, _BLOCK_BYTES // width)
    for start in range(0, len(text), step):
        part = text.slice(start, step)
        offsets = np.frombuffer(part.buffers()[1], np.int64)[
            part.offset : part.offset + len(part) + 1
        ]
        lengths = np.diff(offsets)
        block = _fixed_width(part, offsets, lengths, width)
        nulls = part.is_null().to_numpy(zero_copy_only=False)
        h = np.where(nulls, NULL_HASH, lengths.astype(np.uint64))
        words = (lengths + 7) // 8  # a string's own words only: its hash ignores the width
        same = (words == words[0]).all()  # one length (ids, usually): no row stops early
        for i, word in enumerate(block.view(np.uint64).T):
            mixed = mix(h * GOLDEN + word)
            h = mixed if same else np.where(words > i, mixed, h)
        hashes[start : start + len(part)] = h
    return hashes


def _fixed_width(part: pa.Array, offsets: np.ndarray, lengths: np.ndarray, width: int):
    """The strings as rows of `width` bytes, zero-padded."""
    block = np.zeros((len(part), width), dtype=np.uint8)
    data = part.buffers()[2]
    if data is None or not len(part):
        return block
    values = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]]
    if (lengths == lengths[0]).all():  # ids of one length (the usual case): no scatter needed
        block[:, : lengths[0]] = values.reshape(len(part), lengths[0])
        return block
    if pc.all(pc.string_is_ascii(part)).as_py() is not False:  # Arrow pads with zero bytes
        padded = pc.ascii_rpad(pc.fill_null(part, ""), width=width, padding="\x00")
        start = np.frombuffer(padded.buffers()[1], np.int64)[padded.offset]
        data = np.frombuffer(padded.buffers()[2], np.uint8)[start : start + len(part) * width]
        return data.reshape(len(part), width)
    # Byte i of the part goes to its row's start in the block plus its place in its string.
    shift = np.repeat(np.arange(len(part)) * width - (offsets[:-1] - offsets[0]), lengths)
    block.reshape(-1)[shift + np.arange(len(shift))] = values
    return block


def repeated_hashes(hashes: list[np.ndarray]) -> np.ndarray:
    """The hashes that occur more than once among all the arrays (sorted; NULL_HASH left out)."""
    every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    every.sort()
    repeated = np.unique(every[1:][every[1:] == every[:-1]])
    return repeated[repeated != NULL_HASH]


class Among:
    """Finds the rows whose hash is one of a few: a bitmap of the hashes' low bits rules most
    rows out before the exact search."""

    _BITS = 24

    def __init__(self, hashes: np.ndarray):
        self._sorted = np.sort(hashes)
        self._mask = np.uint64((1 << self._BITS) - 1)
        self._bitmap = np.zeros(1 << self._BITS, bool)
        self._bitmap[hashes & self._mask] = True

    def rows(self, hashes: np.ndarray) -> np.ndarray:
        if not len(self._sorted):
            return np.empty(0, np.int64)
        maybe = np.flatnonzero(self._bitmap[hashes & self._mask])
        at = np.minimum(np.searchsorted(self._sorted, hashes[maybe]), len(self._sorted) - 1)
        return maybe[self._sorted[at] == hashes[maybe]]
