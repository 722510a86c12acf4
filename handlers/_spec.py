"""A handler's signature, read once into a frozen `HandlerSpec` when it is declared."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from envelope import wire_name
from handlers._context import Context, JobContext
from handlers._errors import HandlerDefinitionError
from handlers._rate import Rate

_ContextClasses = (Context, JobContext)


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """Everything the runtime needs to know about a handler, computed once."""

    fn: Callable[..., Any]
    name: str  # the wire name of the message it handles
    model: type[BaseModel]
    returns: type[BaseModel] | None
    returns_optional: bool
    is_async: bool
    call: Callable[[BaseModel, Any], Any]  # call(msg, ctx), whatever the parameter order
    permission: Callable[[Any, Any], Any] | None = None
    permission_is_async: bool = False
    public: bool = False
    concurrent: bool = False
    timeout: float | None = None
    reply: bool = True
    ack: bool = False
    queue: str | None = None
    rate: Rate | None = None
    retries: int = 0
    result_ttl: int | None = None
    start_timeout: float | None = None
    #: A plain `def`: runs on a worker (RQ or a thread), with the database.
    deferred: bool = field(init=False)
    #: Nothing to check beyond connection auth: no `rate=`, no `permission=`.
    unchecked: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "deferred", not self.is_async)
        object.__setattr__(self, "unchecked", self.rate is None and self.permission is None)

    @property
    def qualname(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


def _has_wire_name(model: type[BaseModel]) -> bool:
    try:
        wire_name(model)
    except TypeError:
        return False
    return True


def _fail(fn: Callable[..., Any], problem: str) -> HandlerDefinitionError:
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    return HandlerDefinitionError(f"handler {name}: {problem}")


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(model, optional) for `Model`, `Model | None`, `Optional[Model]`; (None, _) otherwise."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            return args[0], True
    return None, False


def read_spec(fn: Callable[..., Any], **options: Any) -> HandlerSpec:
    """Read `fn`'s annotations (once) and check its options; `HandlerDefinitionError` if wrong."""
    if not callable(fn):
        raise HandlerDefinitionError(f"@handler decorates {fn!r}, which is not a function")
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise _fail(fn, "generators cannot be handlers; return one reply model instead")
    is_async = inspect.iscoroutinefunction(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise _fail(fn, f"its annotations cannot be resolved ({exc})") from exc
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise _fail(fn, f"its signature cannot be read ({exc})") from exc

    message_param: inspect.Parameter | None = None
    context_param: inspect.Parameter | None = None
    model: type[BaseModel] | None = None
    wanted_ctx = Context if is_async else JobContext
    kind = "async def" if is_async else "plain def (deferred)"
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise _fail(fn, f"*{param.name} / **{param.name} parameters are not supported")
        annotation = hints.get(param.name)
        if isinstance(annotation, type) and issubclass(annotation, _ContextClasses):
            if not issubclass(annotation, wanted_ctx):
                raise _fail(
                    fn,
                    f"parameter {param.name!r} is annotated {annotation.__name__}, but "
                    f"{kind} handlers take {wanted_ctx.__name__}",
                )
            if context_param is not None:
                raise _fail(fn, "has two context parameters; take one")
            context_param = param
            continue
        candidate, _ = _model_of(annotation)
        if candidate is not None:
            if not _has_wire_name(candidate):
                raise _fail(
                    fn,
                    f"parameter {param.name!r} is annotated {candidate.__name__}, which has no "
                    f"wire name: decorate it with @message('some.name')",
                )
            if message_param is not None:
                raise _fail(
                    fn,
                    f"takes two messages ({message_param.name!r} and {param.name!r}); "
                    "a handler takes exactly one message",
                )
            message_param, model = param, candidate
            continue
        if param.default is not param.empty:
            continue  # an ordinary keyword with a default never receives anything
        raise _fail(
            fn,
            f"parameter {param.name!r} must be annotated with a @message model or "
            f"{wanted_ctx.__name__}",
        )
    if message_param is None or model is None:
        raise _fail(
            fn,
            "takes no message: annotate one parameter with a @message model "
            "(a model with no fields for a payload-less message)",
        )

    returns, returns_optional = None, False
    if "return" not in hints:
        # Without it, a handler that returns its reply would import fine and fail on
        # its first request; the annotation is what says what goes on the wire.
        raise _fail(
            fn,
            "has no return annotation: add `-> None` if it answers with an empty success, "
            "or `-> SomeReply` (a pydantic model) for the reply payload it returns",
        )
    if hints["return"] is not type(None):
        returns, returns_optional = _model_of(hints["return"])
        if returns is None:
            raise _fail(
                fn,
                f"returns {hints['return']!r}: the return annotation must be None or a pydantic "
                "model (the reply payload)",
            )

    return _spec_from_options(
        fn, model, returns, returns_optional, is_async, message_param, context_param, options
    )


_OPTIONS = frozenset(
    (
        "permission",
        "public",
        "concurrent",
        "timeout",
        "reply",
        "ack",
        "queue",
        "rate",
        "retries",
        "result_ttl",
        "start_timeout",
    )
)


def _spec_from_options(
    fn: Callable[..., Any],
    model: type[BaseModel],
    returns: type[BaseModel] | None,
    returns_optional: bool,
    is_async: bool,
    message_param: inspect.Parameter,
    context_param: inspect.Parameter | None,
    options: dict[str, Any],
) -> HandlerSpec:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise _fail(
            fn,
            f"unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_OPTIONS))}",
        )
    permission = options.get("permission")
    permission_is_async = False
    if permission is not None:
        if not callable(permission):
            raise _fail(fn, f"permission={permission!r} is not callable; give (msg, ctx) -> bool")
        permission_is_async = inspect.iscoroutinefunction(permission)
        if permission_is_async and not is_async:
            raise _fail(
                fn,
                "a deferred handler's permission runs on the worker and must be a plain def",
            )
    timeout = options.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise _fail(fn, f"timeout={timeout!r} must be a positive number of seconds")
    start_timeout = options.get("start_timeout")
    if start_timeout is not None and (
        not isinstance(start_timeout, int | float) or start_timeout <= 0
    ):
        raise _fail(fn, f"start_timeout={start_timeout!r} must be a positive number of seconds")
    rate_spec = options.get("rate")
    rate: Rate | None = None
    if rate_spec is not None:
        try:
            rate = rate_spec if isinstance(rate_spec, Rate) else Rate.parse(rate_spec)
        except ValueError as exc:
            raise _fail(fn, str(exc)) from None
    reply = bool(options.get("reply", True))
    ack = bool(options.get("ack", False))
    concurrent = bool(options.get("concurrent", False))
    queue = options.get("queue")
    retries = options.get("retries", 0)
    result_ttl = options.get("result_ttl")
    if not reply and returns is not None:
        raise _fail(fn, "reply=False, yet it returns a model: return None or drop reply=False")
    if is_async:
        for name, value in (
            ("queue", queue),
            ("retries", retries or None),
            ("result_ttl", result_ttl),
            ("start_timeout", start_timeout),
        ):
            if value is not None:
                raise _fail(fn, f"{name}= applies to deferred (plain def) handlers only")
    else:
        if concurrent:
            raise _fail(fn, "concurrent=True applies to async handlers; deferred ones never block")
        if ack:
            raise _fail(fn, "ack=True applies to async handlers; deferred ones are answered 'q'")
    if not isinstance(retries, int) or retries < 0:
        raise _fail(fn, f"retries={retries!r} must be a whole number >= 0")

    call = _build_call(fn, message_param, context_param)
    return HandlerSpec(
        fn=fn,
        name=wire_name(model),
        model=model,
        returns=returns,
        returns_optional=returns_optional,
        is_async=is_async,
        call=call,
        permission=permission,
        permission_is_async=permission_is_async,
        public=bool(options.get("public", False)),
        concurrent=concurrent,
        timeout=float(timeout) if timeout is not None else None,
        reply=reply,
        ack=ack,
        queue=queue,
        rate=rate,
        retries=retries,
        result_ttl=result_ttl,
        start_timeout=float(start_timeout) if start_timeout is not None else None,
    )


def _build_call(
    fn: Callable[..., Any],
    message_param: inspect.Parameter,
    context_param: inspect.Parameter | None,
) -> Callable[[BaseModel, Any], Any]:
    """A `call(msg, ctx)` that passes both the way `fn` declares them, without reflection."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(inspect.signature(fn).parameters.values())
    wanted = {message_param.name, context_param.name if context_param else None}
    ordered = [p for p in params if p.name in wanted]
    if all(p.kind in positional for p in ordered) and params[: len(ordered)] == ordered:
        if context_param is None:
            return lambda msg, ctx: fn(msg)
        if ordered[0].name == message_param.name:
            return fn
        return lambda msg, ctx: fn(ctx, msg)
    m_name = message_param.name
    c_name = context_param.name if context_param is not None else None
    if c_name is None:
        return lambda msg, ctx: fn(**{m_name: msg})
    return lambda msg, ctx: fn(**{m_name: msg, c_name: ctx})


def checked_result(spec: HandlerSpec, result: Any) -> Any:
    """The handler's return value as its declared reply model; `TypeError` when it is not."""
    returns = spec.returns
    if type(result) is returns:
        return result
    if returns is None:
        if result is not None:
            kind = type(result).__name__
            raise TypeError(
                f"handler {spec.qualname} is declared `-> None` but returned a {kind}: "
                f"annotate it `-> {kind}` (a pydantic model) to send it as the reply "
                "payload, or return nothing"
            )
        return None
    if isinstance(result, returns):
        return result
    if result is None and spec.returns_optional:
        return None
    if isinstance(result, dict):
        return returns.parse_obj(result)
    raise TypeError(
        f"{spec.qualname} is annotated to return {returns.__name__} but returned "
        f"{type(result).__name__}"
    )
