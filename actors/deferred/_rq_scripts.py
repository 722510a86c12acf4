"""The Lua scripts with which `EnvelopeSimpleWorker` does RQ's bookkeeping in fewer round
trips. Each writes what RQ's own commands write; a command list is given as ARGV, each
command as its length then its words (`words`)."""

from __future__ import annotations

from typing import Any

# KEYS[1]: the queue, KEYS[2]: its intermediate queue; ARGV[1]: the jobs' key prefix.
# RQ's LMOVE of a job id and HGETALL of its hash, in one round trip: {id, hash} or nil.
TAKE = """
local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if not id then
    return false
end
return {id, redis.call('HGETALL', ARGV[1] .. id)}
"""

# The end of a job, and the taking of the next one. KEYS[1]: the job's dependents set;
# KEYS[2], KEYS[3] (optional): the queue and its intermediate queue. ARGV[1]: the jobs'
# key prefix, then the commands. Runs the commands (atomically, as a script does) unless
# the job has dependents: 0 then, and nothing is written or taken. Otherwise, with
# KEYS[2] given, takes the next job as TAKE does: {id, hash}; else (or when the queue is
# empty) 1.
END = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
local i = 2
while i <= #ARGV do
    local n = tonumber(ARGV[i])
    redis.call(unpack(ARGV, i + 1, i + n))
    i = i + n + 1
end
if not KEYS[2] then
    return 1
end
local id = redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT')
if not id then
    return 1
end
return {id, redis.call('HGETALL', ARGV[1] .. id)}
"""

# KEYS[1]: the intermediate queue, KEYS[2]: the queue; ARGV[1]: a job's id. A job taken
# and not started goes back to the front of its queue, where it was taken from; not if
# it is no longer in the intermediate queue (started meanwhile): 1 if it went back.
PUT_BACK = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
    return 0
end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""

# ARGV: commands. Runs them in order (atomically, as a script does) and returns the
# last one's reply.
RUN = """
local i = 1
local reply = false
while i <= #ARGV do
    local n = tonumber(ARGV[i])
    reply = redis.call(unpack(ARGV, i + 1, i + n))
    i = i + n + 1
end
return reply
"""


def words(pipeline: Any) -> list[Any]:
    """The commands a redis-py `pipeline` recorded (and has not sent), as ARGV."""
    found: list[Any] = []
    for args, _options in pipeline.command_stack:
        found.append(len(args))
        found.extend(args)
    return found
