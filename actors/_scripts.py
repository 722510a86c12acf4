"""Running a registered Lua script (a redis-py `Script`) on a blocking client, per call
cheaper than calling the `Script`.

redis-py's `Script.__call__` imports `redis.client` on every call (to check for a
pipeline), copies the keys and arguments into new tuples three times over, and goes
through `evalsha` and `_evalsha` to the same `execute_command`: about 33 k
instructions more per call than the command itself, for a script of some 85
arguments (callgrind). A non-forking worker runs three per job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError


def run_script(client: Any, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """`script(keys=keys, args=args, client=client)`: EVALSHA of `script` on `client`;
    a Redis that does not hold the script (a restart, `SCRIPT FLUSH`: NOSCRIPT, nothing
    ran) is sent it once (`SCRIPT LOAD`), then EVALSHA again, as redis-py does."""
    try:
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        script.sha = client.script_load(script.script)
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
