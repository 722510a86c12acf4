"""Errors raised while handlers are declared: at import, never per message."""


class HandlerDefinitionError(TypeError):
    """A handler's signature or options are wrong. The message names the function and the fix."""
