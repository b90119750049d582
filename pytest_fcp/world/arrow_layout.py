"""Where the pieces of an Arrow IPC file lie: what a writer had written at each of its steps (crash points)
and where its record batches' bodies are (``cache.short_body``)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc

__all__ = ["ARROW_MAGIC", "ipc_boundaries", "message_spans"]

#: An Arrow IPC file starts with ``ARROW1`` and two bytes of padding.
ARROW_MAGIC = b"ARROW1\x00\x00"
#: An IPC message starts with this continuation marker, then its metadata length.
_CONTINUATION = b"\xff\xff\xff\xff"


def message_spans(data: bytes) -> tuple[list[tuple[int, int, str]], bool]:
    """``(start, end, type)`` of each IPC message before an Arrow IPC file's footer (or in a stream), each found
    with :func:`pyarrow.ipc.read_message`, and whether ``data`` is an IPC *file* (magic at both ends)."""
    is_file = data.startswith(ARROW_MAGIC) and data.endswith(ARROW_MAGIC[:6]) and len(data) > 18
    start = len(ARROW_MAGIC) if is_file else 0
    limit = len(data) - 10 - int.from_bytes(data[-10:-6], "little", signed=True) if is_file else len(data)
    spans: list[tuple[int, int, str]] = []
    buffer = pa.py_buffer(data)
    pos = data.find(_CONTINUATION, start)
    while 0 <= pos < limit:
        reader = pa.BufferReader(buffer)
        reader.seek(pos)
        try:
            message = ipc.read_message(reader)
        except EOFError:
            break  # the end-of-stream marker
        except (pa.ArrowException, OSError, ValueError):
            pos = data.find(_CONTINUATION, pos + 1)  # four 0xff bytes inside a message: not a message start
            continue
        end = reader.tell()
        if message is None or end > limit:
            break
        spans.append((pos, end, message.type))
        pos = data.find(_CONTINUATION, end)
    return spans, is_file


def ipc_boundaries(data: bytes) -> tuple[list[int], bool]:
    """The offsets at which a writer of ``data`` had finished a piece: for an Arrow IPC file, the end of its
    8-byte magic and the start and end of each IPC message before the footer (the schema, dictionaries, record
    batches); for a stream, its messages' starts and ends. ``([half], False)`` when ``data`` is not Arrow IPC.
    Neither 0 nor the full length is among them."""
    spans, is_file = message_spans(data)
    cuts = [len(ARROW_MAGIC)] if is_file else []
    for start, end, _type in spans:
        cuts += [start, end]
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    if len(cuts) < 2:  # not Arrow IPC: one cut, at half
        return ([len(data) // 2] if len(data) > 1 else []), False
    return cuts, True
