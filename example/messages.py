"""The example's message models: what clients send and what the server answers or pushes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from envelope import message


@message("ping")
class Ping(BaseModel):
    """No payload."""


class Pong(BaseModel):
    pong: bool = True


@message("echo")
class Echo(BaseModel):
    text: str = Field(..., max_length=1000)


class Echoed(BaseModel):
    text: str


@message("chat.send")
class ChatSend(BaseModel):
    room: str = Field(..., min_length=1, max_length=40, regex=r"^[A-Za-z0-9_-]+$")
    text: str = Field(..., min_length=1, max_length=1000)


@message("chat.message")
class ChatMessage(BaseModel):
    """Pushed to the topic `room.<room>`."""

    room: str
    text: str
    author: str


@message("report.build")
class ReportBuild(BaseModel):
    rows: int = Field(..., ge=1, le=10_000)


class ReportProgress(BaseModel):
    done: int
    total: int


class ReportBuilt(BaseModel):
    report_id: int
    rows: int


@message("math.divide")
class Divide(BaseModel):
    a: float
    b: float


class Quotient(BaseModel):
    result: float


@message("slow.sleep")
class Sleep(BaseModel):
    seconds: float = Field(..., ge=0, le=5)


class Slept(BaseModel):
    seconds: float
