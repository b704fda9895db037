"""Writes the hand-made seeds (fuzz/seeds/<target>): the cases a run must always start from
(values nested past Python's recursion limit, integers past its digit limit, lone
surrogates, a BOM, UTF-16, DLQ records with odd metadata, header names that are not UTF-8).
Every run reads them beside the corpus, so a corpus minimization never drops them. The
headers target's layout is described in fuzz_targets/headers.rs.
Run from the repository root: python fuzz/seeds.py"""

from __future__ import annotations

import hashlib
from pathlib import Path


def record(headers: list[tuple[bytes, bytes | None]], value: bytes | None) -> bytes:
    out = bytearray([len(headers) | (0x80 if value is None else 0)])
    for name, header in headers:
        out += bytes([len(name)]) + name
        out += b"\xff" if header is None else bytes([len(header)]) + header
    return bytes(out + (value or b""))


HEADERS = [
    record([(b"event_id", b"e-1"), (b"event_type", b"T")], b'{"event_type":"T","event_id":"e-1"}'),
    record(
        [(b"event_id", None), (b"ev\xffnt_id", b"\xff\xfe")], b'{"event_type":"T","event_id":7}'
    ),
    record([(b"dlq.error_type", b"X"), (b"event\x00_id", b"e")], None),
    record([], b'{"event_type":"Lone","s":"\\ud800"}'),
    record([(b"event_id", b"e-2")], b'{"event_type":"\\udfff"}'),
    record([], b'{"event_type":"Digits","n":' + b"9" * 4400 + b"}"),
    record([], b'{"event_type":"T","_dlq_metadata":{"original_channel":"orders"}}'),
    record([], b'{"event_type":"T","_dlq_metadata":["not","a","dict"]}'),
    record([], b'{"event_type":"T","_dlq_metadata":{"original_channel":{"a":1}}}'),
    record([], b'{"_raw_value":"AAE=","_dlq_metadata":{"original_channel":"orders"}}'),
    record([], b"[" * 1200 + b"]" * 1200),
    record([], b'\xef\xbb\xbf{"event_type":"Bom"}'),
]

DECODE = [
    b'{"event_type": "OrderPlaced", "price": 101.25, "quantity": 3, "symbol": "AAPL"}',
    b'{"z": 1, "event_type": "A", "a": 2, "m": [1, 2, {"x": null}]}',
    b'{"event_type": "Big", "n": 123456789012345678901234567890, "e": 1e400, "f": 0.1}',
    b'{"event_type": "Odd", "a": NaN, "b": Infinity, "c": -Infinity}',
    b'{"event_type": "Text", "s": "caf\\u00e9 \\ud83d\\ude00 \\n\\t\\"", "u": "\xc3\xbc"}',
    b'{"event_type": "Dup", "k": 1, "k": 2}',
    b'{"event_type": "Lone", "s": "\\ud800"}',
    b'\xef\xbb\xbf{"event_type": "Bom"}',
    '{"event_type": "Utf16"}'.encode("utf-16"),
    b'{"event_type": "Deep", "d": ' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"event_type": "Deeper", "d": ' + b"[" * 1200 + b"]" * 1200 + b"}",
    b'{"event_type": "Digits", "n": ' + b"7" * 4400 + b"}",
    b'{"event_type": "T", "event_id": "e-1", "_dlq_metadata": {"original_channel": "orders"}}',
    b'{"_raw_value": "AAE=", "_dlq_metadata": {"original_channel": "orders"}}',
    b"[1, 2, 3]",
    b'"a string"',
    b'{"event_type": ""}',
    b'{"event_type": 7}',
    b"not json",
]

if __name__ == "__main__":
    for target, seeds in (("decode_event", DECODE), ("headers", HEADERS)):
        out = Path(__file__).parent / "seeds" / target
        out.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            (out / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
