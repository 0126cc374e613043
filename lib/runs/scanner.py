"""A compiled reader of W&B's `.wandb` transaction logs (numba), for sweep-scale run folders.

The log is LevelDB's log format: 32 KiB blocks of chunks, each `crc32 (4) | length (2) |
type (1) | data`, where wandb's CRC is IEEE CRC-32 over the type byte and the data. A record
is one FULL chunk or a FIRST, MIDDLE..., LAST sequence, and its bytes are a protobuf `Record`.

`scan` walks the chunks in compiled code (releasing the GIL, so threads scan logs in
parallel): it joins multi-chunk records, reads each record's type from its protobuf tags, and
gives summary records a signature (a hash of the keys they set or remove). CRCs are checked
for every record that is used: up front for the kinds asked for, on demand (`Scan.check`) for
the rest. A corrupt record is dropped with the rest of its 32 KiB block, as wandb's reader
does.

What a scan gives is read by `lib.runs.history_rows` (the history, column by column) and
`lib.runs.summary` (metadata, config and summary).

A record cut off at the end of the file (a run still being written) is not returned;
`Scan.resume` is where reading continues once more bytes arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.core.compiled import njit

BLOCK = 32768
HEADER = 7                      # the file header ":W&B" + 3 bytes fills the first chunk slot
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
# protobuf field numbers of wandb's Record oneof (wandb/proto/wandb_internal.proto)
HISTORY, SUMMARY, CONFIG, RUN, EXIT = 2, 3, 5, 17, 18
# Record fields outside the `record_type` oneof (num, control, uuid, _info): not a record's type
NOT_TYPE = np.zeros(256, dtype=np.bool_)
NOT_TYPE[[1, 16, 19, 200]] = True


def _crc_tables() -> np.ndarray:
    """Slice-by-8 tables of IEEE CRC-32 (the polynomial zlib.crc32 uses)."""
    t = np.zeros((8, 256), dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[0, i] = c
    for i in range(256):
        for k in range(1, 8):
            t[k, i] = (t[k - 1, i] >> 8) ^ t[0, t[k - 1, i] & 0xFF]
    return t


TABLES = _crc_tables()


@njit(cache=True, nogil=True)
def _crc32(data, start, end, t):
    c = np.uint32(0xFFFFFFFF)
    i = start
    while i + 8 <= end:
        c ^= (np.uint32(data[i]) | (np.uint32(data[i + 1]) << 8)
              | (np.uint32(data[i + 2]) << 16) | (np.uint32(data[i + 3]) << 24))
        c = (t[7, c & 0xFF] ^ t[6, (c >> 8) & 0xFF] ^ t[5, (c >> 16) & 0xFF]
             ^ t[4, c >> 24] ^ t[3, data[i + 4]] ^ t[2, data[i + 5]]
             ^ t[1, data[i + 6]] ^ t[0, data[i + 7]])
        i += 8
    while i < end:
        c = t[0, (c ^ data[i]) & 0xFF] ^ (c >> 8)
        i += 1
    return c ^ np.uint32(0xFFFFFFFF)


@njit(cache=True, nogil=True)
def _varint(buf, i, end):
    """(value, next index); next index -1 on a truncated or over-long varint."""
    value = np.uint64(0)
    shift = np.uint64(0)
    while i < end and shift < 64:
        b = buf[i]
        value |= np.uint64(b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += np.uint64(7)
    return value, -1


@njit(cache=True, nogil=True)
def _field(buf, i, end):
    """Next protobuf field: (number, wire type, value or length, data start, next index)."""
    tag, i = _varint(buf, i, end)
    if i < 0:
        return 0, 0, 0, 0, -1
    number, wire = np.int64(tag >> np.uint64(3)), np.int64(tag & np.uint64(7))
    if wire == 0:
        v, i = _varint(buf, i, end)
        return number, wire, np.int64(v), i, i
    if wire == 2:
        n, i = _varint(buf, i, end)
        length = np.int64(n)
        if i < 0 or length < 0 or i + length > end:
            return 0, 0, 0, 0, -1
        return number, wire, length, i, i + length
    if wire == 1:
        return number, wire, 8, i, i + 8 if i + 8 <= end else -1
    if wire == 5:
        return number, wire, 4, i, i + 4 if i + 4 <= end else -1
    return 0, 0, 0, 0, -1


@njit(cache=True, nogil=True)
def _fnv(h, buf, start, end):
    """FNV-1a over bytes, taking 8 at a time (keys are short; this is the hot loop)."""
    j = start
    while j + 8 <= end:
        w = (np.uint64(buf[j]) | (np.uint64(buf[j + 1]) << np.uint64(8))
             | (np.uint64(buf[j + 2]) << np.uint64(16)) | (np.uint64(buf[j + 3]) << np.uint64(24))
             | (np.uint64(buf[j + 4]) << np.uint64(32)) | (np.uint64(buf[j + 5]) << np.uint64(40))
             | (np.uint64(buf[j + 6]) << np.uint64(48)) | (np.uint64(buf[j + 7]) << np.uint64(56)))
        h = (h ^ w) * np.uint64(1099511628211)
        j += 8
    while j < end:
        h = (h ^ np.uint64(buf[j])) * np.uint64(1099511628211)
        j += 1
    return (h ^ np.uint64(end - start)) * np.uint64(1099511628211)


@njit(cache=True, nogil=True)
def _summary_signature(buf, start, end):
    """A hash of the set of (update|remove, key path) items of a SummaryRecord.

    Order-independent (a sum of item hashes): wandb-core writes a step's keys in map order.
    """
    sig = np.uint64(0)
    i = start
    while i < end and i >= 0:
        number, wire, n, s, i = _field(buf, i, end)
        if i < 0:
            return np.uint64(0)
        if wire != 2 or (number != 1 and number != 2):
            continue
        h = (np.uint64(14695981039346656037) ^ np.uint64(number)) * np.uint64(1099511628211)
        j = s
        while j < s + n:
            inner, w2, n2, s2, j = _field(buf, j, s + n)
            if j < 0:
                return np.uint64(0)
            if w2 == 2 and (inner == 1 or inner == 2):
                h = (h ^ np.uint64(0x100 + inner)) * np.uint64(1099511628211)
                h = _fnv(h, buf, s2, s2 + n2)
        sig += h * np.uint64(0x9E3779B97F4A7C15) | np.uint64(1)
    return sig


@njit(cache=True, nogil=True)
def _scan(data, base, t, verify, joined, rec_start, rec_len, rec_kind, rec_body, rec_body_len,
          rec_sig, rec_checked, stats):
    """Walk `data` (the file from absolute offset `base`: 0, or a chunk start).

    A one-chunk record is left where it is (rec_start indexes `data`); a record made of
    several chunks is joined into `joined` (rec_start is len(data) + its offset there).
    CRCs are checked for chunks of records joined from several chunks and for one-chunk
    records whose kind is set in `verify` (rec_checked says which); `Scan.check` does the
    others when they are used. Returns (records, resume offset, bytes used in `joined`).
    stats[0] counts corrupt chunks, stats[1] records whose protobuf framing is broken.
    """
    n = len(data)
    pos = HEADER if base == 0 else 0
    joined_pos = 0
    pending = -1          # joined offset of a record being joined, -1 if none
    pending_from = -1     # absolute offset of its FIRST chunk
    count = 0
    while pos + HEADER <= n:
        absolute = base + pos
        left = BLOCK - absolute % BLOCK
        if left < HEADER:                      # block trailer padding
            pos += left
            continue
        length = int(data[pos + 4]) | (int(data[pos + 5]) << 8)
        kind = data[pos + 6]
        if kind == 0 and length == 0:          # zero padding up to the block end
            pos += left
            continue
        end = pos + HEADER + length
        if end > n:                            # cut off: wait for the writer
            return count, (absolute if pending < 0 else pending_from), joined_pos
        crc = (np.uint32(data[pos]) | (np.uint32(data[pos + 1]) << 8)
               | (np.uint32(data[pos + 2]) << 16) | (np.uint32(data[pos + 3]) << 24))
        if kind < FULL or kind > LAST or length > left - HEADER or (
                kind != FULL and _crc32(data, pos + 6, end, t) != crc):
            stats[0] += 1                      # drop the record and the rest of the block
            pending = -1
            pos += left
            continue
        checked = kind != FULL
        if kind == FULL:
            buf, start, stop, where = data, pos + HEADER, end, pos + HEADER
            pending = -1
        else:
            if kind == FIRST:
                pending, pending_from = joined_pos, absolute
            elif pending < 0:                  # a MIDDLE/LAST without its FIRST
                pos = end
                continue
            joined[joined_pos:joined_pos + length] = data[pos + HEADER:end]
            joined_pos += length
            if kind != LAST:
                pos = end
                continue
            buf, start, stop, where = joined, pending, joined_pos, n + pending
            pending = -1
        pos = end
        # a whole record, buf[start:stop]: its type and body
        i = start
        rtype = 0
        body = 0
        body_len = 0
        while i < stop and i >= 0:
            number, wire, value, s, i = _field(buf, i, stop)
            if i < 0:
                break
            if wire == 2 and not (number < 256 and NOT_TYPE[number]):
                rtype, body, body_len = number, s, value
                break
        if i < 0 or rtype == 0:
            if not checked and _crc32(data, where - 1, where + (stop - start), t) != crc:
                stats[0] += 1                  # corrupt: drop it and the rest of the block
                pos = pos - HEADER - length + left
            else:
                stats[1] += 1
            continue
        if not checked and rtype < len(verify) and verify[rtype]:
            if _crc32(data, where - 1, where + (stop - start), t) != crc:
                stats[0] += 1                  # corrupt: drop it and the rest of the block
                pos = pos - HEADER - length + left
                continue
            checked = True
        rec_checked[count] = checked
        rec_start[count] = where
        rec_len[count] = stop - start
        rec_kind[count] = rtype
        rec_body[count] = where + (body - start)
        rec_body_len[count] = body_len
        rec_sig[count] = _summary_signature(buf, body, body + body_len) \
            if rtype == SUMMARY else np.uint64(0)
        count += 1
    return count, (base + pos if pending < 0 else pending_from), joined_pos


@dataclass
class Scan:
    """The whole records of a log (or of its tail from an offset)."""

    data: np.ndarray        # the bytes scanned; record i is bytes(self.view(i))
    joined: np.ndarray      # records that spanned several chunks, joined
    start: np.ndarray       # offset in data, or len(data) + offset in joined
    length: np.ndarray
    kind: np.ndarray        # Record field number: HISTORY, SUMMARY, CONFIG, RUN, EXIT, ...
    body: np.ndarray        # where the record's oneof message starts (same addressing)
    body_length: np.ndarray
    signature: np.ndarray   # summary records: hash of the keys they touch
    checked: np.ndarray     # whether the record's CRC has been checked
    resume: int             # absolute offset where the next read continues
    corrupt: int            # chunks dropped for a bad CRC or framing
    undecodable: int        # records whose protobuf framing is broken
    base: int = 0           # absolute file offset of data[0]

    def check(self, i: int) -> bool:
        """Check record i's CRC if the scan did not; False when it is corrupt."""
        if self.checked[i]:
            return True
        s, n = int(self.start[i]), int(self.length[i])
        crc = int.from_bytes(self.data[s - HEADER:s - HEADER + 4].tobytes(), "little")
        ok = int(_crc32(self.data, s - 1, s + n, TABLES)) == crc
        self.checked[i] = ok
        return ok

    def drop_from(self, i: int) -> np.ndarray:
        """Records lost with corrupt record i: it and those after it in its 32 KiB block
        (LevelDB's rule, as wandb's reader applies it)."""
        block_end = (self.base + int(self.start[i])) // BLOCK * BLOCK + BLOCK - self.base
        same = (self.start >= self.start[i]) & (self.start < block_end)
        return np.flatnonzero(same)

    def bytes_at(self, start: int, length: int) -> bytes:
        """Bytes at an address of this scan: an offset in `data`, or len(data) + an offset
        in `joined` (how record, body and value positions are given)."""
        if start >= len(self.data):
            start -= len(self.data)
            return self.joined[start:start + length].tobytes()
        return self.data[start:start + length].tobytes()

    def record(self, i: int) -> bytes:
        return self.bytes_at(int(self.start[i]), int(self.length[i]))

    def __len__(self) -> int:
        return len(self.start)


def as_bytes(data: bytes | bytearray | np.ndarray) -> np.ndarray:
    """A read-only uint8 array (one array type, so numba compiles each function once)."""
    arr = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


ALL = np.ones(256, dtype=np.bool_)
#: What a run's metadata needs checked up front; its summary records are checked when chosen.
METADATA = np.zeros(256, dtype=np.bool_)
METADATA[[CONFIG, RUN, EXIT]] = True


def scan(data: bytes | np.ndarray, base: int = 0, verify: np.ndarray = ALL) -> Scan:
    """Scan log bytes that start at absolute file offset `base` (0, or a `Scan.resume`).

    `verify`: the record kinds whose CRCs are checked during the scan (default all). Others
    are checked by `Scan.check` when used, so reading a summary does not pay for checking
    every history record.
    """
    arr = as_bytes(data)
    cap = len(arr) // 9 + 1      # a record takes at least 9 bytes: it can never fill up
    arrays = [np.empty(cap, dtype=np.int64) for _ in range(5)] + [np.empty(cap, np.uint64),
                                                                  np.empty(cap, np.bool_)]
    joined = np.empty(len(arr), dtype=np.uint8)   # untouched pages cost nothing
    stats = np.zeros(2, dtype=np.int64)
    count, resume, used = _scan(arr, base, TABLES, verify, joined, *arrays, stats)
    # views, not copies: the untouched tail of each array was never paged in
    return Scan(arr, as_bytes(joined[:used].copy()), *(a[:count] for a in arrays),
                resume=int(resume), corrupt=int(stats[0]), undecodable=int(stats[1]),
                base=base)
