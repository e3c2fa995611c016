"""Challenge bundle loader: zip -> validated challenge spec.

Pure: no ORM, no Django imports, nothing written to disk. The service layer
(`challenges.services.bundles`) turns a `Bundle` into rows and stored files.

This module holds the public types and `load_bundle`; the work is done by
`bundle_zip` (hostile-zip checks, capped reads), `bundle_yaml` (safe parsing,
positions), `bundle_config` (EvalAI's keys and defaults) and `bundle_script`
(the evaluation package). Import everything from here.

Leniency rule (DESIGN section 4): a zip EvalAI accepts loads here; a problem that
does not stop the challenge from working is a warning, not a refusal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from challenges.bundle_zip import SafeZip

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
    leaderboards: list[LeaderboardSpec] = field(default_factory=list)
    dataset_splits: list[DatasetSplitSpec] = field(default_factory=list)
    phases: list[PhaseSpec] = field(default_factory=list)
    phase_splits: list[PhaseSplitSpec] = field(default_factory=list)
    evaluation_script: EvaluationScriptSpec | None = None
    unknown_keys: dict[str, Any] = field(default_factory=dict)
    config_file: str = "challenge_config.yaml"  # path of the config inside the zip
    raw_config: dict[str, Any] = field(default_factory=dict)


class Bundle:
    """A validated bundle. Keeps the zip open so the service can stream members out.

    Use as a context manager, or call close().
    """

    spec: ChallengeSpec
    warnings: list[Problem]

    def __init__(
        self,
        spec: ChallengeSpec,
        warnings: list[Problem],
        *,
        archive: SafeZip,
        base: str,
        limits: Limits,
    ):
        self.spec = spec
        self.warnings = warnings
        self._archive: SafeZip | None = archive
        self._base = base  # the config's folder inside the zip: "" or "top/"
        self._limits = limits

    def _member(self, path: str) -> str:
        from challenges.bundle_zip import normalise_relative

        if self._archive is None:
            raise ValueError("The bundle is closed.")
        rel = normalise_relative(path)
        if rel is None:
            raise ValueError(f"{path!r} is not a path inside the bundle.")
        name = self._base + rel
        if not self._archive.is_file(name):
            raise FileNotFoundError(f"{path!r} is not in the bundle.")
        return name

    def open(self, path: str, *, max_bytes: int | None = None) -> IO[bytes]:
        """Open a file named by the config (path relative to the config folder).

        A binary stream that raises BundleError instead of reading past the member's
        declared size, `max_bytes` or `Limits.max_member_bytes`, or on corrupt data.
        """
        name = self._member(path)
        cap = (
            self._limits.max_member_bytes
            if max_bytes is None
            else min(max_bytes, self._limits.max_member_bytes)
        )
        size = self._archive.size(name)  # type: ignore[union-attr]
        if size > cap:
            raise BundleError(
                [Problem(f"It is {size:,} bytes, over the {cap:,}-byte limit.", file=name)]
            )
        return self._archive.open(name, cap)  # type: ignore[union-attr]

    def size(self, path: str) -> int:
        """Uncompressed size in bytes, as the zip declares it."""
        return self._archive.size(self._member(path))  # type: ignore[union-attr]

    def exists(self, path: str) -> bool:
        try:
            self._member(path)
        except (ValueError, FileNotFoundError):
            return False
        return True

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_bundle(source: str | Path | IO[bytes], *, limits: Limits | None = None) -> Bundle:
    """Validate a challenge zip. Raises BundleError listing every problem at once.

    `source` is a path or a seekable binary file (left open; the zip is read from it
    until the Bundle is closed). Hostile archives are refused from their headers,
    before any member is read.
    """
    # The helper modules import the types defined above, hence the late import.
    from challenges import bundle_zip

    limits = limits or Limits()
    problems: list[Problem] = []
    archive = bundle_zip.open_archive(source, limits=limits, problems=problems)
    if archive is None:
        raise BundleError(problems)
    try:
        loaded = _load(archive, limits, problems)
    except BaseException:
        archive.close()
        raise
    if loaded is None or any(p.severity == "error" for p in problems):
        archive.close()
        raise BundleError(problems)
    spec, base = loaded
    return Bundle(
        spec,
        [p for p in problems if p.severity == "warning"],
        archive=archive,
        base=base,
        limits=limits,
    )


def _load(
    archive: SafeZip, limits: Limits, problems: list[Problem]
) -> tuple[ChallengeSpec, str] | None:
    from challenges import bundle_config, bundle_yaml, bundle_zip

    located = _locate_config(archive, problems)
    if located is None:
        return None
    config_name, base, other_yaml = located
    where_located = len(problems)

    info_size = archive.size(config_name)
    if info_size > limits.max_config_bytes:
        problems.append(
            Problem(
                f"The config is {info_size:,} bytes; the limit is {limits.max_config_bytes:,}.",
                file=config_name,
            )
        )
        return None
    try:
        raw = archive.read(config_name, limits.max_config_bytes)
        parsed = bundle_yaml.parse(
            bundle_yaml.decode(raw),
            max_nodes=limits.max_yaml_nodes,
            max_depth=limits.max_yaml_depth,
        )
    except bundle_zip.MemberError as exc:
        problems.append(Problem(f"{exc}.", file=config_name))
        return None
    except bundle_yaml.YamlProblem as exc:
        problems.append(Problem(exc.message, file=config_name, line=exc.line, column=exc.column))
        return None

    folder = bundle_zip.Folder(archive, base)
    spec = bundle_config.build_spec(
        parsed, config_file=config_name, folder=folder, limits=limits, problems=problems
    )

    # YAML inside a script folder is the script's business, not a stray config.
    script_dir = ""
    if spec is not None and spec.evaluation_script and spec.evaluation_script.source.endswith("/"):
        script_dir = base + spec.evaluation_script.source
    problems[where_located:where_located] = [
        Problem(
            f"Ignored: only {bundle_zip.show(config_name)} is read as the challenge config.",
            file=name,
            severity="warning",
        )
        for name in other_yaml
        if not (script_dir and name.startswith(script_dir))
    ]
    return (spec, base) if spec is not None else None


def _is_yaml(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml"))


def _locate_config(archive: SafeZip, problems: list[Problem]) -> tuple[str, str, list[str]] | None:
    """(config path, its folder, other YAML files) or None with an error appended.

    The config is the YAML file at the root, or in the single top folder when
    everything sits in one. Failing both, a lone YAML file anywhere is taken (older
    EvalAI versions did) with a warning.
    """
    from challenges.bundle_zip import is_junk, show, sorted_names

    names = [n for n in archive.files if not is_junk(n)]
    yaml_files = [n for n in names if _is_yaml(n)]
    base = ""
    candidates = [n for n in yaml_files if "/" not in n]
    if not candidates:
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) == 1 and all("/" in n for n in names):
            base = tops.pop() + "/"
            candidates = [n for n in yaml_files if n.startswith(base) and "/" not in n[len(base) :]]
    if not candidates and len(yaml_files) == 1:
        config = yaml_files[0]
        base = config.rsplit("/", 1)[0] + "/"
        problems.append(
            Problem(
                f"The config is not at the top of the zip; it is read from {show(config)} and its "
                f"paths from {show(base)}.",
                file=config,
                severity="warning",
            )
        )
        return config, base, []
    if not candidates:
        found = (
            f" Found {sorted_names(yaml_files)}, but not at the top level." if yaml_files else ""
        )
        problems.append(
            Problem(
                "No challenge config: put challenge_config.yaml at the root of the zip (or in its "
                "single top folder), next to evaluation_script.zip and the files it names." + found
            )
        )
        return None
    if len(candidates) == 1:
        config = candidates[0]
    else:
        preferred = [c for c in candidates if c.rsplit("/", 1)[-1] == "challenge_config.yaml"] or [
            c for c in candidates if c.rsplit("/", 1)[-1] == "challenge_config.yml"
        ]
        if not preferred:
            problems.append(
                Problem(
                    f"Several YAML files at the top of the zip ({sorted_names(candidates)}) and none is "
                    "named challenge_config.yaml: rename the challenge config to challenge_config.yaml "
                    "or remove the others."
                )
            )
            return None
        config = preferred[0]
        problems.append(
            Problem(
                f"Several YAML files next to the config ({sorted_names(c for c in candidates if c != config)}); "
                f"{show(config)} is used and the others are ignored.",
                file=config,
                severity="warning",
            )
        )
        return config, base, [n for n in yaml_files if n not in candidates and n.startswith(base)]
    return config, base, [n for n in yaml_files if n != config and n.startswith(base)]
