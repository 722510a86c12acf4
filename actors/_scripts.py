"""Running a registered Lua script (a redis-py `Script`) on a blocking client, per call
cheaper than calling the `Script`.

redis-py's `Script.__call__` imports `redis.client` on every call (to check for a
pipeline), copies the keys and arguments into new tuples three times over, and goes
through `evalsha` and `_evalsha` to the same `execute_command`: about 33 k
instructions more per call than the command itself, for a script of some 85
arguments (callgrind). A non-forking worker runs three per job.

A client whose connection packs with a `RememberingPacker` (`remember_packing`: the
non-forking worker's scripts' connection) has its scripts' calls packed from templates:
hiredis spent about 1,540 instructions per word packing them (some 190 words per job),
most of which are the same for every job (the worker's and its queue's keys, command
and field names, TTLs, states...). Per job, only the words that vary (the job's and its
execution's ids and keys, times) are packed, into the rest packed once.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import redis.connection
from redis.exceptions import NoScriptError

# redis-py's packer by hiredis (redis-py 5 and later, hiredis installed).
_HIREDIS = getattr(redis.connection, "HiredisRespSerializer", None)

#: Templates kept at most per connection (a script's call per count of words).
TEMPLATES = 64

_CONSTANT = (str, bytes, int)  # the types a template's constant word may have


class _Packed(str):
    """The command name ("EVALSHA") of a command packed already: the packer gives the
    bytes that follow it (`RememberingPacker.pack`), and redis-py reads its reply as the
    command's (retries, errors, its connection's handling unchanged)."""


_EVALSHA = _Packed("EVALSHA")


class _Template:
    """A script's call of some count of words, packed, but for its words that vary."""

    __slots__ = ("constants", "format", "kinds", "take_constants", "take_varying", "varying")

    def __init__(self, words: tuple[Any, ...], pieces: list[bytes], varying: set[int]) -> None:
        constant = [n for n in range(len(words)) if n not in varying]
        self.varying = varying
        self.take_constants = _taker(constant)
        self.take_varying = _taker(sorted(varying))
        self.constants = self.take_constants(words)
        self.kinds = tuple(map(type, self.constants))
        parts = [b"*%d\r\n$7\r\nEVALSHA\r\n" % (len(words) + 1)]
        for n, piece in enumerate(pieces):
            parts.append(b"$%d\r\n%b\r\n" if n in varying else piece.replace(b"%", b"%%"))
        self.format = b"".join(parts)


def _constant(word: Any) -> bool:
    """May `word` be a template's constant: of a type whose values pack the same when
    equal (an enum's members are equal to their value only)."""
    kind = type(word)
    return kind in _CONSTANT or (isinstance(word, str) and isinstance(word, enum.Enum))


def _taker(places: list[int]) -> Any:
    """A function of a tuple giving its words at `places`, as a tuple."""
    if not places:
        return lambda words: ()
    if len(places) == 1:
        place = places[0]
        return lambda words: (words[place],)
    return itemgetter(*places)


class RememberingPacker:
    """A connection's command packer (`inner`, redis-py's by hiredis) that packs a
    script's call (`evalsha`) from a template of the calls of as many words to the same
    script: the words that were the same in its last two calls (a str, bytes, int or
    str enum's member, of the same type and value) packed once, by `inner`; those that
    vary packed per call as hiredis packs them (an ASCII str, bytes, int or float; any
    other, and a call whose constant words are not all the template's, is packed by
    `inner` whole, and the template learns which words vary). Other commands go to
    `inner` as they are."""

    __slots__ = ("_last", "_templates", "inner")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._templates: dict[tuple[str, int], _Template] = {}
        self._last: dict[tuple[str, int], tuple[Any, ...]] = {}

    def pack(self, *args: Any) -> list[bytes]:
        if args[0] is _EVALSHA:
            return [args[1]]
        packed: list[bytes] = self.inner.pack(*args)
        return packed

    def evalsha(self, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> bytes:
        """EVALSHA `sha` of `keys` and `args`, packed: the bytes `inner` packs for
        `("EVALSHA", sha, len(keys), *keys, *args)`."""
        words = (sha, len(keys), *keys, *args)
        shape = sha, len(words)
        template = self._templates.get(shape)
        if template is not None:
            constants = template.take_constants(words)
            if constants == template.constants and tuple(map(type, constants)) == template.kinds:
                filled = []
                for word in template.take_varying(words):  # as hiredis packs them
                    kind = type(word)
                    if kind is str:
                        if not word.isascii():
                            break  # hiredis's encoding, and its refusals
                        data = word.encode()
                    elif kind is float:
                        data = repr(word).encode()
                    elif kind is int:
                        data = b"%d" % word
                    elif kind is bytes:
                        data = word
                    elif isinstance(word, str) and word.isascii():  # an enum's member:
                        data = str.encode(word)  # its value, as hiredis
                    else:
                        break  # packed by hiredis, whole
                    filled.append(len(data))
                    filled.append(data)
                else:
                    return template.format % tuple(filled)
        whole = self.inner.pack("EVALSHA", *words)
        last = self._last.get(shape)
        if len(self._last) >= TEMPLATES:  # a bounded memory: started again when full
            self._templates.clear()
            self._last.clear()
            template = None
        self._last[shape] = words
        if last is not None:
            varying = set() if template is None else set(template.varying)
            for n, (word, before) in enumerate(zip(words, last, strict=True)):
                if not _constant(word) or type(word) is not type(before) or word != before:
                    varying.add(n)
            self._templates[shape] = _Template(words, self._split(whole, 1), varying)
        return b"".join(whole)

    @staticmethod
    def _split(packed: list[bytes], skip: int) -> list[bytes]:
        """The packed words of the packed command `packed` (chunks), the first `skip`
        left out."""
        data = b"".join(packed)
        pos = data.index(b"\r\n") + 2
        pieces = []
        while pos < len(data):
            end = data.index(b"\r\n", pos)
            stop = end + 2 + int(data[pos + 1 : end]) + 2
            pieces.append(data[pos:stop])
            pos = stop
        return pieces[skip:]


def remember_packing(client: Any) -> RememberingPacker | None:
    """The `RememberingPacker` of the single connection of `client` (a
    `single_connection_client`), put in place of its packer if needed; None when
    redis-py's connection has no packer of its own to replace."""
    conn = client.connection
    inner = getattr(conn, "_command_packer", None)
    if isinstance(inner, RememberingPacker):
        return inner
    if _HIREDIS is None or type(inner) is not _HIREDIS:
        return None  # the varying words are packed here as hiredis packs them
    packer = conn._command_packer = RememberingPacker(inner)
    return packer


def forget_packing(client: Any) -> None:
    """`client`'s connection given back its own packer (before it goes back to its pool)."""
    conn = client.connection
    packer = getattr(conn, "_command_packer", None)
    if isinstance(packer, RememberingPacker):
        conn._command_packer = packer.inner


def run_script(client: Any, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """`script(keys=keys, args=args, client=client)`: EVALSHA of `script` on `client`;
    a Redis that does not hold the script (a restart, `SCRIPT FLUSH`: NOSCRIPT, nothing
    ran) is sent it once (`SCRIPT LOAD`), then EVALSHA again, as redis-py does. On a
    connection packing with a `RememberingPacker`, the call is packed by it."""
    packer = getattr(getattr(client, "connection", None), "_command_packer", None)
    if type(packer) is not RememberingPacker:
        packer = None
    try:
        return _evalsha(client, packer, script.sha, keys, args)
    except NoScriptError:
        script.sha = client.script_load(script.script)
        return _evalsha(client, packer, script.sha, keys, args)


def _evalsha(
    client: Any,
    packer: RememberingPacker | None,
    sha: str,
    keys: Sequence[Any],
    args: Sequence[Any],
) -> Any:
    if packer is not None:
        return client.execute_command(_EVALSHA, packer.evalsha(sha, keys, args))
    return client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
