"""A deferred request's job written as RQ writes it, from a template RQ made.

RQ builds every job in Python: a `Job` of some sixty attributes, its serializer looked
up through a runtime-checkable Protocol (`isinstance` against it per job), the options
parsed three times over, the hash's fields assembled in `to_dict`. In a burst that was
about a third of the server's CPU per deferred job. Yet the jobs of one handler differ
in six values only: the job's id (in its key and in the queue), its request (`data`,
serialized as RQ does, in a zlib stream, and `description`, RQ's call string or the
caller's own) and its two times (`created_at`, `enqueued_at`).

So the first job of each shape (queue, function, options) is built by RQ itself, and
the commands RQ collected for it (SADD of the queue, the job's hash, RPUSH of its id)
become a `JobTemplate`, once each of the six values is checked to be what is rebuilt
here from the job's request: RQ's serializer for `data` (in a zlib stream, see
`compressed`), RQ's `get_call_string` for `description` (or the caller's, given for
each job), RQ's time format. A shape whose job holds
anything else that depends on the job (or a value that does not check out) is never
templated: each of its jobs is built by RQ, as before. The next jobs' commands are the
template's bytes (the ARGV of the script that runs them, see `_rq_enqueue`), packed for
Redis once, with the six values put in: RQ's fields, order and encoding. Three
differences: one time is taken per job for both (RQ's differ by the microseconds it
spends in between); RQ's HSET of the status alone, just before the hash that sets the
same status in the same atomic step, is left out (the same hash in Redis, a command
less per job); and a small request's `data` is a zlib stream of stored blocks rather
than compressed (see `compressed`).
"""

from __future__ import annotations

import datetime
import zlib
from typing import Any

from rq.utils import get_call_string

from actors.deferred._rq_job import format_date

#: RQ's timestamp format (`rq.utils.utcformat`).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# What varies from job to job, by its place in the values `JobTemplate.packed` makes.
_KEY, _ID, _TIME, _DATA, _DESCRIPTION = range(5)
_FIELDS = {"created_at": _TIME, "enqueued_at": _TIME, "data": _DATA, "description": _DESCRIPTION}
_BULK = b"$%d\r\n%b\r\n"

#: Up to this many bytes, a job's serialized request goes into a zlib stream uncompressed.
STORED_UP_TO = 1024


def encoded(arg: Any, encoder: Any) -> bytes:
    """`arg` as redis-py's `encoder` encodes a command's argument (its rules, refusals
    and encoding)."""
    if type(arg) is str:
        return arg.encode(encoder.encoding, encoder.encoding_errors)
    return bytes(encoder.encode(arg))


class JobTemplate:
    """The commands that enqueue a job of one shape (a script's ARGV, packed), less the
    job's own values."""

    __slots__ = ("_format", "_func_name", "_key_prefix", "_order", "_serializer", "queue", "words")

    def __init__(
        self,
        format_: bytes,
        order: tuple[int, ...],
        words: int,
        func_name: str,
        queue: Any,
    ) -> None:
        self.queue = queue  # what it was learnt on
        self._format = format_
        self._order = order
        self.words = words  # ARGV's length
        self._func_name = func_name
        self._key_prefix = queue.job_class.redis_job_namespace_prefix
        self._serializer = queue.serializer

    @classmethod
    def learn(
        cls,
        commands: list[tuple[Any, ...]],
        queue: Any,
        job_id: str,
        req: Any,
        encoder: Any,
        description: str | None = None,
    ) -> JobTemplate | None:
        """The template of the job `job_id` of `req` whose `commands` RQ collected (in
        its pipeline, on `queue`), or None when they hold anything else that varies.
        `description`: the caller's for that job (each job of the shape then gives its
        own), or None for RQ's call string."""
        key_prefix = queue.job_class.redis_job_namespace_prefix
        serializer = queue.serializer
        parts: list[bytes] = []
        order: list[int] = []
        found: dict[str, Any] = {}
        commands = _without_status_first(commands, key_prefix + job_id)
        for args in commands:
            if not isinstance(args[0], str) or " " in args[0]:
                return None
            job_hash = args[0] == "HSET" and "data" in args[2::2]
            parts.append(_BULK % (len(str(len(args))), str(len(args)).encode()))
            for n, arg in enumerate(args):
                field = args[n - 1] if job_hash and n >= 3 and n % 2 == 1 else None
                if arg == key_prefix + job_id:
                    order.append(_KEY)
                elif arg == job_id:
                    order.append(_ID)
                elif field in _FIELDS:
                    if field in found:
                        return None
                    found[field] = arg
                    order.append(_FIELDS[field])
                else:
                    data = encoded(arg, encoder)
                    if job_id.encode() in data:
                        return None  # the job's id where it is not rebuilt
                    parts.append((_BULK % (len(data), data)).replace(b"%", b"%%"))
                    continue
                parts.append(_BULK)
        if set(found) != set(_FIELDS) or _KEY not in order or _ID not in order:
            return None
        func_name = _func_name(found["data"], serializer, req)
        if func_name is None:
            return None
        if description is None:
            description = get_call_string(func_name, (req,), {}, max_length=75)
        if found["description"] != description:
            return None
        try:
            for name in ("created_at", "enqueued_at"):
                datetime.datetime.strptime(found[name], TIME_FORMAT)
        except (TypeError, ValueError):
            return None
        words = sum(1 + len(args) for args in commands)
        return cls(b"".join(parts), tuple(order), words, func_name, queue)

    def packed(self, job_id: str, req: Any, encoder: Any, description: str | None = None) -> bytes:
        """The packed ARGV of the job `job_id` of `req` (`description`: the caller's, or
        None for RQ's call string), as RQ would write it."""
        text = encoder.encoding, encoder.encoding_errors
        args = (req,)
        if description is None:
            description = get_call_string(self._func_name, args, {}, max_length=75) or ""
        now = format_date(datetime.datetime.now(datetime.UTC))
        values = (
            (self._key_prefix + job_id).encode(*text),
            job_id.encode(*text),
            now.encode(*text),
            compressed(self._serializer.dumps((self._func_name, None, args, {}))),
            description.encode(*text),
        )
        filled: list[Any] = []
        for which in self._order:
            value = values[which]
            filled.append(len(value))
            filled.append(value)
        return self._format % tuple(filled)


def compressed(data: bytes) -> bytes:
    """`data` as a zlib stream that RQ's `Job.restore` reads (`zlib.decompress`, its
    default window): up to `STORED_UP_TO` bytes in stored blocks (zlib's level 0, the
    smallest window and memory level), larger ones by `zlib.compress`, as RQ writes them.

    `zlib.compress` sets up its 256 KiB of state and zeroes a 64 KiB hash table for
    each call, then builds Huffman trees for the block: about 177 k instructions and
    tens of microseconds for a request of a few hundred bytes, which it shrinks by a
    hundred bytes or so. Stored, the same stream costs about 13 k instructions, for
    about 3% more bytes than the request itself."""
    if len(data) > STORED_UP_TO:
        return zlib.compress(data)
    stream = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
    return stream.compress(data) + stream.flush()


def words_of(commands: list[tuple[Any, ...]]) -> list[Any]:
    """`commands` as the ARGV of `_rq_scripts.RUN`: each command's count of words, then
    its words (a two-word name such as "CONFIG GET" as two words)."""
    found: list[Any] = []
    for args in commands:
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        found.append(str(len(args)))
        found.extend(args)
    return found


def _func_name(data: Any, serializer: Any, req: Any) -> str | None:
    """The function's name in RQ's `data` of a job of `req`, if RQ made it as
    `JobTemplate.packed` makes it: the serialized (name, no instance, (req,), no
    kwargs), compressed."""
    try:
        raw = zlib.decompress(data)
        func_name, instance, args, kwargs = serializer.loads(raw)
    except Exception:
        return None
    if not isinstance(func_name, str) or instance is not None or kwargs != {} or len(args) != 1:
        return None
    if raw != serializer.dumps((func_name, None, (req,), {})):
        return None
    return func_name


def _without_status_first(commands: list[tuple[Any, ...]], key: str) -> list[tuple[Any, ...]]:
    """`commands` less RQ's HSET of the job's status alone when the job's hash that
    follows in the same MULTI sets the same status (RQ's `set_status`, then `save`):
    nothing can read the job in between, and Redis ends with the same hash, for a
    command less per job."""
    kept = []
    for n, args in enumerate(commands):
        if args[:3] == ("HSET", key, "status") and len(args) == 4:
            later = [
                dict(zip(other[2::2], other[3::2], strict=False))
                for other in commands[n + 1 :]
                if other[:2] == ("HSET", key)
            ]
            if later and later[0].get("status") == args[3]:
                continue
        kept.append(args)
    return kept
