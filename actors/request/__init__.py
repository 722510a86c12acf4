"""One request: the context the stages and the handler share."""

from actors.request._context import RequestActor, RequestContext

__all__ = ["RequestActor", "RequestContext"]
