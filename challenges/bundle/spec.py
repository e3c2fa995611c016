"""Challenge bundle types: what a loaded bundle is (the spec dataclasses), what is wrong
with one (`Problem`, `BundleError`) and the caps it is read under (`Limits`).

The bottom of the package: every other bundle module imports these; this imports none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bundle, located as precisely as we can."""

    message: str
    file: str = ""  # path inside the zip ("challenge_config.yaml", "evaluation_script.zip")
    key: str = ""  # key path in the config ("challenge_phases[1].codename")
    line: int | None = None  # 1-based, for YAML problems
    column: int | None = None  # 1-based
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file or "<bundle>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "file": self.file,
            "key": self.key,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


class BundleError(Exception):
    """The bundle cannot be loaded. `problems` lists every error (and warning) found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(
            f"{len(errors)} problem(s) in challenge bundle:\n" + "\n".join(map(str, errors))
        )

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass(frozen=True)
class Limits:
    max_entries: int = 10_000
    max_total_uncompressed_bytes: int = 4 * 1024**3
    max_member_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0  # per member, for members over 1 MiB uncompressed
    max_config_bytes: int = 1024**2
    max_yaml_nodes: int = 100_000  # after alias expansion
    max_script_bytes: int = 64 * 1024**2  # whole evaluation script, uncompressed
    max_text_file_bytes: int = 16 * 1024**2  # each HTML page the config names
    max_yaml_depth: int = 64  # nesting levels in the config


@dataclass
class LeaderboardSpec:
    id: int
    labels: list[str]
    default_order_by: str
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)  # as written, for storage


@dataclass
class DatasetSplitSpec:
    id: int
    name: str
    codename: str


@dataclass
class PhaseSpec:
    id: int
    name: str
    codename: str
    description: str = ""  # HTML content (file read), not the path
    start_date: dt.datetime | None = None  # timezone-aware UTC
    end_date: dt.datetime | None = None
    test_annotation_file: str | None = None  # path relative to the config folder
    leaderboard_public: bool = False
    is_public: bool = False
    is_submission_public: bool = False
    max_submissions_per_day: int = 100000
    max_submissions_per_month: int = 100000
    max_submissions: int = 100000
    max_concurrent_submissions_allowed: int = 3
    allowed_submission_file_types: list[str] = field(default_factory=list)  # [".json", ".csv"]
    is_restricted_to_select_one_submission: bool = False
    is_partial_submission_evaluation_enabled: bool = False
    default_submission_meta_attributes: list[dict[str, Any]] = field(default_factory=list)
    submission_meta_attributes: list[dict[str, Any]] = field(default_factory=list)
    allowed_email_ids: list[str] = field(default_factory=list)
    disable_logs: bool = False
    is_submission_paused: bool = False
    show_logs_to_participants: bool = False  # ours: EvalAI shows stdout/stderr to teams
    # extensions (ours)
    submission_type: Literal["file", "code"] = "file"
    test_input_file: str | None = None  # features a code submission predicts on
    test_extra_file: str | None = None  # code phases: predict(features, extra)
    prediction_range: list[float] | None = None  # code phases: [low, high] allowed predictions
    public_data: list[str] = field(default_factory=list)  # paths relative to the config folder
    resources: dict[str, Any] = field(default_factory=dict)  # cpus, memory_mb, time_limit_s
    max_final_submissions: int | None = None
    allow_late_submissions: bool = False
    private_splits_reveal: str | None = None  # None or "at_end"
    max_submission_size_bytes: int | None = None
    # live tournament (code phases): {cumulative_rounds, round_hours, rank_by}; None: not one
    tournament: dict[str, Any] | None = None


@dataclass
class PhaseSplitSpec:
    challenge_phase_id: int
    leaderboard_id: int
    dataset_split_id: int
    visibility: int = 3  # 1 host, 2 host + own team, 3 public
    leaderboard_decimal_precision: int = 2
    is_leaderboard_order_descending: bool = True
    show_execution_time: bool = False
    show_leaderboard_by_latest_submission: bool = False


@dataclass
class EvaluationScriptSpec:
    files: dict[str, bytes]  # package-relative path -> content; "__init__.py" always present
    sha256: str  # over sorted (path, content): independent of zip metadata
    requirements: str | None = None  # requirements.txt content, when present
    source: str = ""  # "evaluation_script.zip" or "evaluation_script/"


@dataclass
class ChallengeSpec:
    title: str
    short_description: str = ""
    description: str = ""  # HTML content
    evaluation_details: str = ""
    terms_and_conditions: str = ""
    submission_guidelines: str = ""
    leaderboard_description: str = ""
    image: str | None = None  # path relative to the config folder
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    published: bool = False
    remote_evaluation: bool = False
    is_docker_based: bool = False
    is_registration_open: bool = True
    anonymous_leaderboard: bool = False
    tags: list[str] = field(default_factory=list)
    domain: str = ""
    prizes: list[dict[str, Any]] = field(default_factory=list)
    sponsors: list[dict[str, Any]] = field(default_factory=list)
    allowed_email_domains: list[str] = field(default_factory=list)
    blocked_email_domains: list[str] = field(default_factory=list)
    max_team_members: int | None = None
    entry_deadline: dt.datetime | None = None
    team_merger_deadline: dt.datetime | None = None
    leaderboards: list[LeaderboardSpec] = field(default_factory=list)
    dataset_splits: list[DatasetSplitSpec] = field(default_factory=list)
    phases: list[PhaseSpec] = field(default_factory=list)
    phase_splits: list[PhaseSplitSpec] = field(default_factory=list)
    evaluation_script: EvaluationScriptSpec | None = None
    unknown_keys: dict[str, Any] = field(default_factory=dict)
    config_file: str = "challenge_config.yaml"  # path of the config inside the zip
    raw_config: dict[str, Any] = field(default_factory=dict)
