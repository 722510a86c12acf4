"""`EnvelopeJob`: RQ's `Job` as `EnvelopeSimpleWorker` restores it, with less CPU per job.

What RQ does per job that costs a short job the most, for nothing: its restore parses
the job's dates (`created_at`, `enqueued_at`, ...) with `datetime.strptime`, the
pure-Python `_strptime` (about 30 µs a date on Python 3.11, two or more per job), and
each registry the job makes (started twice, finished once) checks the job's serializer
against RQ's runtime-checkable `Serializer` Protocol (about 7 µs each). Here a date in
RQ's own format (`rq.utils.utcformat`: `YYYY-MM-DDTHH:MM:SS.ffffffZ`) is read by
`datetime.fromisoformat`, to the same value, and anything else by RQ's `str_to_date`;
a registry of a job with RQ's default serializer is given that serializer as None (RQ
resolves None to the same class, without the check). The rest of the restore is RQ's.
`format_date` writes a date as RQ's `utcformat` does, without `strftime`.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, TypeVar

from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import DefaultSerializer
from rq.utils import str_to_date, utcformat

#: The job hash's dates, as text and as the bytes keys of HGETALL.
_DATES = tuple(
    (name, name.encode())
    for name in ("created_at", "enqueued_at", "started_at", "ended_at", "last_heartbeat")
)
# `rq.utils.utcformat`'s output ('%Y-%m-%dT%H:%M:%S.%fZ'), ASCII digits only.
_RQ_DATE = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_UTC = datetime.UTC
_R = TypeVar("_R", StartedJobRegistry, FailedJobRegistry, FinishedJobRegistry)


def parse_date(value: bytes | str) -> datetime.datetime:
    """`rq.utils.str_to_date(value)`, the same datetime (aware, UTC) or the same error,
    without `strptime` for a date RQ wrote."""
    raw = value.encode() if isinstance(value, str) else value
    if _RQ_DATE.fullmatch(raw):
        try:
            return datetime.datetime.fromisoformat(raw[:-1].decode()).replace(tzinfo=_UTC)
        except ValueError:
            pass  # out of range (month 13): RQ's error, below
    return str_to_date(value)


def format_date(value: datetime.datetime) -> str:
    """`rq.utils.utcformat(value)`, the same text, without `strftime`: the datetime's
    `strftime` imports `time` and formats through C's `strftime` and `sprintf`, about
    21 k instructions a date, against about 12 k here."""
    if value.year < 1000:  # `%Y` of glibc's strftime does not pad: RQ's text
        return utcformat(value)
    # %-formatting: an f-string's format specs cost about as much as strftime.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


class EnvelopeJob(Job):
    """`rq.job.Job`, restored and bookkept with less CPU; the same fields, the same keys
    and values written (`EnvelopeSimpleWorker` uses it unless given a job class of its
    own)."""

    def restore(self, raw_data: Any) -> Any:
        fields = dict(raw_data)
        dates = []
        for name, key in _DATES:
            value = fields.pop(key, None)
            if value is None:
                value = fields.pop(name, None)
            dates.append(value)
        # RQ's restore of everything else; the dates it does not see are None (created_at
        # its `now()`), as when they are empty; the ones that are not come next.
        super().restore(fields)
        created, enqueued, started, ended, heartbeat = dates
        if created:
            self.created_at = parse_date(created)
        self.enqueued_at = parse_date(enqueued) if enqueued else None
        self.started_at = parse_date(started) if started else None
        self.ended_at = parse_date(ended) if ended else None
        self.last_heartbeat = parse_date(heartbeat) if heartbeat else None

    def _registry(self, kind: type[_R]) -> _R:
        """The job's registry of `kind`, as RQ's property makes it; RQ's default
        serializer given as None (RQ resolves None to it, without the Protocol check)."""
        serializer = None if self.serializer is DefaultSerializer else self.serializer
        return kind(
            self.origin,
            connection=self.connection,
            job_class=self.__class__,
            serializer=serializer,
        )

    @property
    def started_job_registry(self) -> StartedJobRegistry:
        return self._registry(StartedJobRegistry)

    @property
    def failed_job_registry(self) -> FailedJobRegistry:
        return self._registry(FailedJobRegistry)

    @property
    def finished_job_registry(self) -> FinishedJobRegistry:
        return self._registry(FinishedJobRegistry)
