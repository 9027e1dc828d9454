"""A job's log: its status changes and streamed output, in order, in one Redis stream.

Entries are `status` (written by the transition script), `chunk` (a streamed chat
`chat.completion.chunk`, with its text), `piece` (a direct job's RunPod `/stream` piece,
kept as RunPod gave it) and `progress` (the worker's progress report). Entry ids are the event ids of `/v1/jobs/{id}/events`, so a client
that reconnects with `Last-Event-ID` gets exactly what it missed, and every reader of a
direct job's stream gets every piece (RunPod hands each piece out once; podrelay reads it
once, into the log). SSE text of an event not finished at the end of a read is kept
beside the log until the next read completes it.
"""

from __future__ import annotations

import json

import redis

from integration.surfaces import chat_stream

LOG = "pr:log:{}"  # per job: the entries above, kept while the job runs and for an hour after it ends
# A Redis stream costs at least a 4 KB node: more than a finished job's record. After the end
# the record has the whole result, and a reader that comes later gets it as the `job` event.
LOG_KEPT_AFTER_END = 3600
CHANGED = "pr:changed:{}"  # pub/sub channel per job: a message on every status change and new output
STATE = "pr:logstate:{}"  # per job: {"rest": SSE text of an unfinished event, "read": stream pieces parsed}
CURSOR = "pr:logcursor:{}"  # per job: how far readers without a cursor of their own have read its pieces
MAX_ENTRIES = 100_000


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class JobLog:
    """Reads and appends a job's log."""

    def __init__(self, conn: redis.Redis, ttl: int):
        self.conn = conn
        self.ttl = ttl

    def stream_state(self, job_id: str) -> tuple[str, int]:
        """The SSE text of an event the last read left unfinished, and how many pieces were parsed."""
        value = self.conn.get(STATE.format(job_id))
        state = json.loads(value) if value else {}
        return state.get("rest", ""), int(state.get("read", 0))

    def add_pieces(self, job_id: str, pieces: list) -> None:
        """Parse a streamed chat's next pieces (RunPod's /stream, in order) into chunks and add them."""
        rest, read = self.stream_state(job_id)
        chunks, rest = chat_stream.parse(pieces, rest)
        self.append_chunks(job_id, chunks, rest, read + len(pieces))

    def finish_pieces(self, job_id: str, output: list) -> None:
        """The final output is the list of every piece: add the chunks of those not read yet."""
        rest, read = self.stream_state(job_id)
        chunks, rest = chat_stream.parse(output[read:], rest)
        self.append_chunks(job_id, chunks + chat_stream.finish(rest), "", len(output))

    def append_chunks(self, job_id: str, chunks: list[dict], rest: str, read: int) -> None:
        """Add streamed chat chunks, and keep the unfinished text and the count for the next read."""
        pipe = self.conn.pipeline()
        for chunk in chunks:
            entry = {"type": "chunk", "text": chat_stream.text(chunk), "chunk": _json(chunk)}
            pipe.xadd(LOG.format(job_id), entry, maxlen=MAX_ENTRIES, approximate=True)
        pipe.set(STATE.format(job_id), _json({"rest": rest, "read": read}), ex=self.ttl)
        pipe.expire(LOG.format(job_id), self.ttl)
        if chunks:
            pipe.publish(CHANGED.format(job_id), "output")  # wakes the job's readers (waiting.py)
        pipe.execute()

    def append_pieces(self, job_id: str, pieces: list) -> None:
        """Add a direct job's stream pieces as RunPod gave them."""
        if not pieces:
            return
        pipe = self.conn.pipeline(transaction=False)
        for piece in pieces:
            pipe.xadd(LOG.format(job_id), {"type": "piece", "output": _json(piece)}, maxlen=MAX_ENTRIES, approximate=True)
        pipe.expire(LOG.format(job_id), self.ttl)
        pipe.publish(CHANGED.format(job_id), "output")
        pipe.execute()

    def append_progress(self, job_id: str, progress) -> None:
        """Add a running job's progress report."""
        pipe = self.conn.pipeline(transaction=False)
        pipe.xadd(LOG.format(job_id), {"type": "progress", "progress": _json(progress)}, maxlen=MAX_ENTRIES, approximate=True)
        pipe.expire(LOG.format(job_id), self.ttl)
        pipe.publish(CHANGED.format(job_id), "progress")
        pipe.execute()

    def entries(self, job_id: str, kind: str, after: str = "0-0") -> list[tuple[str, dict]]:
        """Every entry of one kind after stream id `after`, oldest first."""
        start = "(" + after if after != "0-0" else "-"
        found = self.conn.xrange(LOG.format(job_id), min=start, count=MAX_ENTRIES)
        return [
            (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
            for entry_id, fields in found
            if fields.get(b"type") == kind.encode()
        ]

    def streamed_text(self, job_id: str) -> str:
        """All streamed chat text, joined."""
        return "".join(fields.get("text", "") for _, fields in self.entries(job_id, "chunk"))

    def pieces(self, job_id: str, after: str = "0-0") -> list[tuple[str, object]]:
        """A direct job's stream pieces after `after`: (entry id, piece)."""
        return [(entry_id, json.loads(fields["output"])) for entry_id, fields in self.entries(job_id, "piece", after)]

    def shared_cursor(self, job_id: str) -> str:
        """How far readers without a cursor of their own have read (RunPod's consume-once semantics)."""
        value = self.conn.get(CURSOR.format(job_id))
        return value.decode() if value else "0-0"

    def set_shared_cursor(self, job_id: str, entry_id: str) -> None:
        """Move the shared cursor on."""
        self.conn.set(CURSOR.format(job_id), entry_id, ex=self.ttl)

    def read(self, job_id: str, after: str, block_ms: int | None) -> list[tuple[str, dict]]:
        """Entries after stream id `after` (`0-0`: all), waiting up to `block_ms` for one."""
        answer = self.conn.xread({LOG.format(job_id): after}, count=500, block=block_ms)
        return [
            (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
            for _, entries in answer or []
            for entry_id, fields in entries
        ]
