"""What `report.build` writes: a report and its rows."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Report(models.Model):
    owner: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE
    )
    rows: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
    created: models.DateTimeField[Any, Any] = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"report {self.pk} ({self.rows} rows)"


class ReportRow(models.Model):
    report: models.ForeignKey[Report, Report] = models.ForeignKey(
        Report, on_delete=models.CASCADE, related_name="lines"
    )
    n: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
    square: models.BigIntegerField[int, int] = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "n"], name="report_row_n")]
