"""The analytics of a phase as CSV rows (section, date, name, value): one file a
spreadsheet can pivot. Every cell goes through challenges.csv_safe."""

from __future__ import annotations

import io
from typing import Any

from challenges.csv_safe import csv_writer


def analytics_csv(numbers: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["section", "date", "name", "value"])
    for row in numbers["teams_over_time"]:
        writer.writerow(["teams", row["date"], "", row["count"]])
    for row in numbers["participants_over_time"]:
        writer.writerow(["participants", row["date"], "", row["count"]])
    for row in numbers["submissions_per_day"]:
        for status, count in sorted(row["by_status"].items()):
            writer.writerow(["submissions", row["date"], status, count])
    for row in numbers["failure_classes"]:
        writer.writerow(["failures", "", row["failure_kind"], row["count"]])
    for name, value in numbers["evaluation_time_s"].items():
        writer.writerow(["evaluation_time_s", "", name, value])
    for split in numbers["splits"]:
        for row in split["best_over_time"]:
            writer.writerow([f"best:{split['split']}", row["date"], split["label"], row["best"]])
        for row in split["distribution"]:
            writer.writerow(
                [
                    f"distribution:{split['split']}",
                    "",
                    f"{row['from']:.6g}..{row['to']:.6g}",
                    row["count"],
                ]
            )
    for row in numbers["last_submission_per_team"]:
        writer.writerow(["last_submission", row["last_submitted_at"], row["team"], row["status"]])
    return out.getvalue()
