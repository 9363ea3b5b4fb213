"""Rows in Postgres' COPY text format, built from Arrow columns in C rather than value by value in Python.

COPY text format: fields separated by tabs, rows ended by a newline, NULL as `\\N`, and a
backslash, tab, newline or carriage return inside a value escaped with a backslash.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Replacements in this order: the backslash first, so the escapes added after it stay single.
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_NEEDS_ESCAPE = r"[\\\t\n\r]"

Column = pa.Array | pa.ChunkedArray | pa.Scalar


def escaped(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Text values as COPY text fields: unchanged unless one holds a character COPY would read as syntax."""
    if not pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        return values
    for character, escape in _ESCAPES:
        values = pc.replace_substring(values, character, escape)
    return values


def rows(fields: list[Column]) -> Iterator[memoryview]:
    """The rows of `fields` (text columns, already escaped, or constants) as COPY text, a buffer per chunk."""
    lines = pc.binary_join_element_wise(
        pc.binary_join_element_wise(*fields, "\t", null_handling="replace", null_replacement="\\N"),
        pa.scalar("\n"),
        "",
    )
    for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
        if len(chunk):
            yield _data(chunk)


def _data(chunk: pa.StringArray) -> memoryview:
    """The bytes of a string array's values, end to end, without copying them."""
    _, offsets, data = chunk.buffers()
    bounds = np.frombuffer(offsets, np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
    return memoryview(data)[bounds[0] : bounds[-1]]
