"""A run's history from a `scanner.Scan`, built column by column (compiled, numba): one
`json.loads` per key instead of a dict per row (`bench/runs.py` measures it at sweep scale).
"""

from __future__ import annotations

import json
from collections.abc import Collection

import numpy as np
import pandas as pd

from lib.core.compiled import njit
from lib.runs.scanner import HISTORY, Scan, _field, _fnv


@njit(cache=True, nogil=True)
def _history_items(data, joined, kinds, bodies, body_lens, item_row, item_col, item_start,
                   item_len, value_start, value_len, row_record, row_step, slots, first_item):
    """Every item of every history record: its row, column (keys told apart by a hash of the
    key, or of the nested key joined by '.'), where the HistoryItem and its value_json lie,
    and each row's record and step number (-1 if none). Columns are numbered in order of
    first use through an open-addressing table `slots` (hashes; 0 = free), with the item
    that first used each in `first_item`. Returns (items, rows, columns), columns -1 when
    there are more keys than the table holds."""
    n = len(data)
    items = 0
    rows = 0
    columns = 0
    mask = len(slots) - 1
    slot_col = np.full(len(slots), -1, dtype=np.int64)
    for r in range(len(kinds)):
        if kinds[r] != HISTORY:
            continue
        offset = 0
        buf = data
        s0 = bodies[r]
        if s0 >= n:
            buf = joined
            offset = n
            s0 -= n
        end = s0 + body_lens[r]
        step = -1
        i = s0
        while i < end and i >= 0:
            number, wire, value, s, i = _field(buf, i, end)
            if i < 0:
                break
            if number == 2 and wire == 2:          # StepRecord {num = 1}
                j = s
                while j < s + value and j >= 0:
                    f2, w2, v2, s2, j = _field(buf, j, s + value)
                    if f2 == 1 and w2 == 0:
                        step = v2
                continue
            if number != 1 or wire != 2:
                continue
            # a HistoryItem: key (1), nested_key (2, repeated), value_json (16)
            h = np.uint64(14695981039346656037)
            parts = 0
            vs = 0
            vn = 0
            j = s
            while j < s + value and j >= 0:
                f2, w2, v2, s2, j = _field(buf, j, s + value)
                if w2 != 2:
                    continue
                if f2 == 1 or f2 == 2:
                    if parts:
                        h = (h ^ np.uint64(46)) * np.uint64(1099511628211)   # '.'
                    h = _fnv(h, buf, s2, s2 + v2)
                    parts += 1
                elif f2 == 16:
                    vs, vn = s2, v2
            if h == 0:
                h = np.uint64(1)
            k = np.int64(h & np.uint64(mask))
            while slots[k] != 0 and slots[k] != h:
                k = (k + 1) & mask
            if slots[k] == 0:
                if columns * 2 >= len(slots):
                    return items, rows, -1
                slots[k] = h
                slot_col[k] = columns
                first_item[columns] = items
                columns += 1
            item_row[items] = rows
            item_col[items] = slot_col[k]
            item_start[items] = offset + s
            item_len[items] = value
            value_start[items] = offset + vs
            value_len[items] = vn
            items += 1
        row_record[rows] = r
        row_step[rows] = step
        rows += 1
    return items, rows, columns


@njit(cache=True, nogil=True)
def _columns_json(data, joined, col, starts, lens, ncols, out, seg_start, seg_end):
    """Each column's value_json texts as one JSON array `[v1,...]`, column k in
    out[seg_start[k]:seg_end[k]]; one pass over the items in file order."""
    n = len(data)
    size = np.zeros(ncols, dtype=np.int64)
    for i in range(len(col)):
        size[col[i]] += lens[i] + 1
    o = 0
    for k in range(ncols):
        seg_start[k] = o
        out[o] = 91
        seg_end[k] = o + 1                  # where column k's next value goes
        o += size[k] + 1
    for i in range(len(col)):
        k = col[i]
        o = seg_end[k]
        s = starts[i]
        m = lens[i]
        for q in range(m):
            out[o + q] = joined[s - n + q] if s >= n else data[s + q]
        out[o + m] = 44
        seg_end[k] = o + m + 1
    for k in range(ncols):
        if seg_end[k] == seg_start[k] + 1:
            out[seg_end[k]] = 93
            seg_end[k] += 1
        else:
            out[seg_end[k] - 1] = 93


def _values(s: Scan, starts: np.ndarray, lens: np.ndarray, text: bytes) -> tuple[list, np.ndarray]:
    """Parse a column's JSON array text; if a value is not JSON, parse them one by one and
    return (values, bad) where bad marks the texts that are not JSON."""
    bad = np.zeros(len(starts), dtype=bool)
    try:
        return json.loads(text), bad
    except (json.JSONDecodeError, RecursionError, UnicodeDecodeError):
        values = []
        for k, (start, length) in enumerate(zip(starts.tolist(), lens.tolist())):
            try:
                values.append(json.loads(s.bytes_at(start, length)))
            except (json.JSONDecodeError, RecursionError, UnicodeDecodeError):
                values.append(None)
                bad[k] = True
        return values, bad


def history_table(s: Scan, keys: Collection[str] | None = None):
    """The history rows of a scan as a pandas DataFrame (one row per history record, one
    column per key, as `pd.DataFrame(list_of_row_dicts)` would build it), and how many rows
    were dropped because a value is not JSON. Values are parsed with one `json.loads` per
    column, so a 100k-step history costs a few parsing calls instead of a dict per row.
    `keys`: only these columns (and `_step`) are parsed; rows are kept as they are."""
    from wandb.proto import wandb_internal_pb2 as pb  # heavy: imported on first use

    cap = int(np.count_nonzero(s.kind == HISTORY))
    total = int(s.body_length[s.kind == HISTORY].sum()) // 4 + 1   # an item takes >= 4 bytes
    item = [np.empty(total, np.int64) for _ in range(6)]
    rows_of = [np.empty(cap, np.int64), np.empty(cap, np.int64)]
    slots, first_item = np.zeros(1 << 16, np.uint64), np.empty(1 << 15, np.int64)
    items, rows, ncols = _history_items(s.data, s.joined, s.kind, s.body,
                                        s.body_length, *item, *rows_of, slots, first_item)
    if ncols < 0:
        raise ValueError(f"more than {len(first_item)} distinct history keys")
    row, col, start, length, vstart, vlen = (a[:items] for a in item)
    step = rows_of[1][:rows]
    order = np.argsort(col.astype(np.int16 if ncols < 2 ** 15 else np.int32), kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=ncols))])
    columns: dict[str, pd.Series] = {}
    bad_rows = np.zeros(rows, dtype=bool)
    history_item = pb.HistoryItem()
    text = np.empty(int(vlen.sum()) + items + 2 * ncols + 2, dtype=np.uint8)
    seg_start, seg_end = np.empty(ncols, np.int64), np.empty(ncols, np.int64)
    _columns_json(s.data, s.joined, col, vstart, vlen, ncols, text, seg_start,
                  seg_end)
    everything = pd.RangeIndex(rows)
    for k in range(ncols):                                # columns in order of first use
        idx = order[bounds[k]:bounds[k + 1]]
        i0 = int(first_item[k])
        history_item.ParseFromString(s.bytes_at(int(start[i0]), int(length[i0])))
        name = history_item.key or ".".join(history_item.nested_key)   # as leet names it
        if keys is not None and name not in keys and name != "_step":
            continue
        values, bad = _values(s, vstart[idx], vlen[idx],
                              text[seg_start[k]:seg_end[k]].tobytes())
        bad_rows[row[idx][bad]] = True
        at = row[idx]
        once = len(at) < 2 or bool((np.diff(at) > 0).all())   # at most once in each row
        if once and len(at) == rows:                       # a value in every row
            columns[name] = pd.Series(values, index=everything)
            continue
        series = pd.Series(values, index=pd.Index(at))
        if not once:                                       # a key twice in a row: last wins
            series = series[~series.index.duplicated(keep="last")]
        columns[name] = series
    given = columns.get("_step")
    if rows and (given is None or len(given) < rows):     # rows without `_step`: their step
        has = np.zeros(rows, dtype=bool)
        if given is not None:
            has[given.index.to_numpy()] = True
        missing = np.flatnonzero(~has & (step >= 0))
        if len(missing):
            extra = pd.Series(step[missing], index=pd.Index(missing))
            columns["_step"] = extra if given is None else pd.concat([given, extra]).sort_index()
    frame = pd.DataFrame({name: col if len(col) == rows else col.reindex(everything)
                          for name, col in columns.items()}, index=everything)
    dropped = int(bad_rows.sum())
    if dropped:
        frame = frame[~bad_rows].reset_index(drop=True)
    return frame, dropped


