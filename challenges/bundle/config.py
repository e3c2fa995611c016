"""Checking a parsed challenge_config.yaml against EvalAI's format.

Every problem is collected (never stop at the first), located by file, key path
(`challenge_phases[1].codename`) and line/column. Defaults are EvalAI's. Part of
`challenges.bundle`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _

from challenges.bundle.archive import Folder
from challenges.bundle.json_values import jsonable
from challenges.bundle.phases import PhaseChecker
from challenges.bundle.script import load_script
from challenges.bundle.spec import (
    ChallengeSpec,
    DatasetSplitSpec,
    LeaderboardSpec,
    Limits,
    PhaseSplitSpec,
    Problem,
    Severity,
)
from challenges.bundle.values import kind, to_int
from challenges.bundle.yaml_reader import ParsedYaml
from challenges.json_limits import JSONLimitError, json_loads_bounded
from challenges.text_checks import bidi_problem

__all__ = ["build_spec", "jsonable"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
TOP_KEYS = {
    "title", "short_description", "description", "evaluation_details", "terms_and_conditions",
    "submission_guidelines", "image", "leaderboard_description", "evaluation_script", "start_date",
    "end_date", "published", "remote_evaluation", "is_docker_based", "tags", "domain", "prizes",
    "sponsors", "is_registration_open", "anonymous_leaderboard", "allowed_email_domains",
    "blocked_email_domains", "max_team_members", "entry_deadline", "team_merger_deadline",
    "leaderboard", "challenge_phases",
    "dataset_splits", "challenge_phase_splits",
}  # fmt: skip
# Keys EvalAI knows (models, docs, old versions) that this platform does not use.
TOP_EVALAI_KEYS = {
    "evaluation_criteria", "is_static_dataset_code_upload", "enable_forum", "forum_url",
    "cli_version", "submission_time_limit", "max_docker_image_size", "manual_participant_approval",
    "require_complete_profile", "banned_email_ids", "has_prize", "has_sponsors", "featured",
    "approved_by_admin", "is_disabled", "max_concurrent_submission_evaluation", "list_tags",
    "queue", "slug", "github_repository", "github_branch", "ephemeral_storage", "ec2_storage",
    "uses_ec2_worker", "use_host_credentials", "use_host_sqs", "worker_instance_type",
    "worker_image_url", "inform_hosts", "allow_resuming_submissions",
    "allow_host_cancel_submissions", "allow_cancel_running_submissions",
    "allow_participants_resubmissions", "challenge_usage_type", "workers", "cpu_only_jobs",
    "job_cpu_cores", "job_memory", "sqs_retention_period", "vpc_cidr", "subnet_1_cidr",
    "subnet_2_cidr", "aws_region", "creator",
}  # fmt: skip
SPLIT_KEYS = {"id", "name", "codename"}
LEADERBOARD_KEYS = {"id", "schema"}
PHASE_SPLIT_KEYS = {
    "challenge_phase_id", "leaderboard_id", "dataset_split_id", "visibility",
    "leaderboard_decimal_precision", "is_leaderboard_order_descending", "show_execution_time",
    "show_leaderboard_by_latest_submission",
}  # fmt: skip
PHASE_SPLIT_EVALAI_KEYS = {"show_scores_on_leaderboard", "is_multi_metric_leaderboard"}


def build_spec(
    parsed: ParsedYaml,
    *,
    config_file: str,
    folder: Folder,
    limits: Limits,
    problems: list[Problem],
) -> ChallengeSpec | None:
    """The validated spec, or None when the config is not even a mapping.

    Problems (errors and warnings) are appended to `problems`; the caller refuses the
    bundle if any is an error.
    """
    return _Checker(parsed, config_file, folder, limits, problems).challenge()


class _Checker(PhaseChecker):
    """The whole config: top-level keys, leaderboards, splits, phases, phase splits."""

    def challenge(self) -> ChallengeSpec | None:
        data = self.parsed.data
        if not isinstance(data, dict):
            self.error(
                "",
                _(
                    "The config must be a mapping of keys (title: ..., challenge_phases: ...), not %(kind)s."
                )
                % {"kind": kind(data)},
            )
            return None
        for path, line, column in self.parsed.duplicates:
            self.problems.append(
                Problem(
                    _("appears twice in the same mapping; the last value is used."),
                    file=self.config_file,
                    key=path,
                    line=line,
                    column=column,
                    severity="warning",
                )
            )

        spec = ChallengeSpec(title=self.text(data, "title", "", required=True, max_len=200).strip())
        bidi = bidi_problem(spec.title, what="The title")
        if bidi:  # a title that reads differently to each viewer is refused, not warned of
            self.error("title", bidi)
        spec.config_file = self.config_file
        spec.raw_config = jsonable(data)
        details_key = "evaluation_details"
        if data.get(details_key) is None and data.get("evaluation_criteria") is not None:
            details_key = "evaluation_criteria"  # the key's name in EvalAI's older docs
        known = TOP_KEYS | {details_key}
        spec.unknown_keys = jsonable(self.unknown(data, "", known, TOP_EVALAI_KEYS))
        spec.short_description = self.text(data, "short_description", "")
        if data.get("description") is None:
            self.warning(
                "description", _("is missing: the challenge page will have no description.")
            )
        spec.description = self.content(data, "description", "", missing="error")
        spec.evaluation_details = self.content(data, details_key, "", missing="warning")
        spec.terms_and_conditions = self.content(
            data, "terms_and_conditions", "", missing="warning"
        )
        spec.submission_guidelines = self.content(
            data, "submission_guidelines", "", missing="warning"
        )
        spec.leaderboard_description = self.content(
            data, "leaderboard_description", "", missing="warning", inline=True
        )
        spec.image = self.image(data)
        spec.start_date = self.date(data, "start_date", "")
        spec.end_date = self.date(data, "end_date", "", required=True)
        self.dates_in_order("", spec.start_date, spec.end_date)
        spec.published = self.boolean(data, "published", "", default=False)
        spec.remote_evaluation = self.boolean(data, "remote_evaluation", "", default=False)
        spec.is_docker_based = self.boolean(data, "is_docker_based", "", default=False)
        spec.is_registration_open = self.boolean(data, "is_registration_open", "", default=True)
        spec.anonymous_leaderboard = self.boolean(data, "anonymous_leaderboard", "", default=False)
        if spec.remote_evaluation:
            self.warning(
                "remote_evaluation",
                _(
                    "Remote evaluation: submissions wait on the challenge's queue for the hosts' own worker (EvalAI's remote_challenge_evaluation, see docs/evalai.md); evaluation_script is not run here."
                ),
            )
        if spec.is_docker_based:
            self.warning(
                "is_docker_based",
                _(
                    "Docker-image submissions are not supported; participants submit files (or code, with `submission_type: code` on a phase)."
                ),
            )
        spec.tags = self.text_list(data, "tags", "")
        spec.domain = self.text(data, "domain", "", max_len=100)
        spec.prizes = [jsonable(p) for _path, p in self.items(data, "prizes", "")]
        spec.sponsors = [jsonable(s) for _path, s in self.items(data, "sponsors", "")]
        spec.allowed_email_domains = self.text_list(data, "allowed_email_domains", "")
        spec.blocked_email_domains = self.text_list(data, "blocked_email_domains", "")
        spec.max_team_members = self.integer(data, "max_team_members", "", default=None, minimum=1)
        spec.entry_deadline = self.deadline(data, "entry_deadline", spec)
        spec.team_merger_deadline = self.deadline(data, "team_merger_deadline", spec)

        spec.leaderboards = self.leaderboards(data)
        spec.dataset_splits = self.dataset_splits(data)
        spec.phases = self.phases(data, spec)
        spec.phase_splits = self.phase_splits(data, spec)

        script = self.text(data, "evaluation_script", "", required=True)
        if script.strip():
            spec.evaluation_script = load_script(
                self.folder, script, limits=self.limits, report=self.script_report
            )
        return spec

    def script_report(
        self,
        severity: Severity,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        if file is None:
            self.report(severity, "evaluation_script", message)
        else:
            self.problems.append(
                Problem(
                    message,
                    file=file,
                    key="evaluation_script",
                    line=line,
                    column=column,
                    severity=severity,
                )
            )

    def deadline(self, data: dict, key: str, spec: ChallengeSpec) -> dt.datetime | None:
        """A Kaggle deadline: a date, before the challenge's end (a later one never bites,
        which is worth a warning, not a refusal)."""
        value = self.date(data, key, "")
        if value is not None and spec.end_date is not None and value > spec.end_date:
            self.warning(
                key,
                _(
                    "%(value)s is after end_date (%(end)s UTC): it never applies, since "
                    "nothing is entered or merged after the end."
                )
                % {
                    "value": f"{value:%Y-%m-%d %H:%M:%S}",
                    "end": f"{spec.end_date:%Y-%m-%d %H:%M:%S}",
                },
            )
        return value

    def image(self, data: dict) -> str | None:
        rel = self.file_ref(data, "image", "", missing="warning")
        if rel is not None and not rel.lower().endswith(IMAGE_SUFFIXES):
            self.warning(
                "image",
                _("is not a JPEG, PNG, GIF or WebP file; the challenge is shown without a logo."),
            )
            return None
        return rel

    # -- leaderboards and splits ---------------------------------------------------

    def leaderboards(self, data: dict) -> list[LeaderboardSpec]:
        result: list[LeaderboardSpec] = []
        seen: dict[int, str] = {}
        for path, item in self.items(data, "leaderboard", "", required=True):
            self.unknown(item, path, LEADERBOARD_KEYS, set())
            lid = self.integer(item, "id", path, default=None, required=True)
            self.unique(seen, lid, f"{path}.id")
            schema_path = f"{path}.schema"
            schema = item.get("schema")
            if isinstance(schema, str):
                try:
                    schema = json_loads_bounded(schema, where=schema_path)
                except JSONLimitError as exc:
                    self.error(schema_path, str(exc))
                    continue
            if schema is None:
                self.error(
                    schema_path,
                    _(
                        'is required: schema: {"labels": ["Metric1", "Total"], "default_order_by": "Total"}.'
                    ),
                )
                continue
            if not isinstance(schema, dict):
                self.error(
                    schema_path,
                    _("must be a mapping with labels and default_order_by, not %(kind)s.")
                    % {"kind": kind(schema)},
                )
                continue
            labels = self.labels(schema, schema_path)
            order_by = self.text(schema, "default_order_by", schema_path, required=True)
            if labels and order_by and order_by not in labels:
                self.error(
                    f"{schema_path}.default_order_by",
                    _("is %(order_by)s, which is not one of the labels (%(names)s).")
                    % {"order_by": repr(order_by), "names": ", ".join(labels)},
                )
            metadata = self.label_metadata(schema, schema_path, labels)
            if lid is not None and labels and order_by:
                result.append(LeaderboardSpec(lid, labels, order_by, metadata, jsonable(schema)))
        return result

    def labels(self, schema: dict, schema_path: str) -> list[str]:
        path = f"{schema_path}.labels"
        value = schema.get("labels")
        if value is None or value == []:
            self.error(
                path, _('is required: a non-empty list of metric names, like ["Accuracy", "F1"].')
            )
            return []
        if not isinstance(value, list):
            self.error(
                path, _("must be a list of metric names, not %(kind)s.") % {"kind": kind(value)}
            )
            return []
        labels = self.text_list(schema, "labels", schema_path)
        for label in {x for x in labels if labels.count(x) > 1}:
            self.error(path, _("lists %(label)s more than once.") % {"label": repr(label)})
        return labels if len(labels) == len(value) else []

    def label_metadata(
        self, schema: dict, schema_path: str, labels: list[str]
    ) -> dict[str, dict[str, Any]]:
        path = f"{schema_path}.metadata"
        value = schema.get("metadata")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(
                path,
                _("must be a mapping from label to {sort_ascending, description}, not %(kind)s.")
                % {"kind": kind(value)},
            )
            return {}
        result: dict[str, dict[str, Any]] = {}
        for label, meta in value.items():
            meta_path = f"{path}.{label}"
            if labels and str(label) not in labels:
                self.warning(
                    meta_path,
                    _("describes %(label)s, which is not one of the labels.")
                    % {"label": repr(str(label))},
                )
            if not isinstance(meta, dict):
                self.error(
                    meta_path,
                    _("must be a mapping like {sort_ascending: false}, not %(kind)s.")
                    % {"kind": kind(meta)},
                )
                continue
            entry = jsonable(meta)
            if "sort_ascending" in meta:
                entry["sort_ascending"] = self.boolean(
                    meta, "sort_ascending", meta_path, default=False
                )
            if "description" in meta:
                entry["description"] = self.text(meta, "description", meta_path)
            result[str(label)] = entry
        return result

    def dataset_splits(self, data: dict) -> list[DatasetSplitSpec]:
        result = []
        ids: dict[int, str] = {}
        codenames: dict[str, str] = {}
        for path, item in self.items(data, "dataset_splits", "", required=True):
            self.unknown(item, path, SPLIT_KEYS, set())
            sid = self.integer(item, "id", path, default=None, required=True)
            name = self.text(item, "name", path, required=True, max_len=200)
            codename = self.text(item, "codename", path, required=True, max_len=100).strip()
            self.unique(ids, sid, f"{path}.id")
            self.unique(codenames, codename or None, f"{path}.codename")
            if sid is not None and codename:
                result.append(DatasetSplitSpec(sid, name, codename))
        return result

    # -- phase splits --------------------------------------------------------------

    def phase_splits(self, data: dict, spec: ChallengeSpec) -> list[PhaseSplitSpec]:
        phase_ids = {p.id for p in spec.phases}
        leaderboard_ids = {lb.id for lb in spec.leaderboards}
        split_ids = {s.id for s in spec.dataset_splits}
        # Ids that exist but whose item had another problem: no second error about them.
        phase_ids |= self.ids_written(data, "challenge_phases")
        leaderboard_ids |= self.ids_written(data, "leaderboard")
        split_ids |= self.ids_written(data, "dataset_splits")
        result = []
        seen: dict[tuple[int, int], str] = {}
        for path, item in self.items(data, "challenge_phase_splits", "", required=True):
            self.unknown(item, path, PHASE_SPLIT_KEYS, PHASE_SPLIT_EVALAI_KEYS)
            refs = {}
            for key, known, what in (
                ("challenge_phase_id", phase_ids, "challenge_phases"),
                ("leaderboard_id", leaderboard_ids, "leaderboard"),
                ("dataset_split_id", split_ids, "dataset_splits"),
            ):
                ref = self.integer(item, key, path, default=None, required=True)
                if ref is not None and ref not in known:
                    listed = ", ".join(map(str, sorted(known))) or _("none")
                    self.error(
                        f"{path}.{key}",
                        _(
                            "refers to id %(ref)s, but %(what)s has no item with that id (ids: %(listed)s)."
                        )
                        % {"ref": ref, "what": what, "listed": listed},
                    )
                    ref = None
                refs[key] = ref
            visibility = self.integer(item, "visibility", path, default=3)
            if visibility not in (1, 2, 3, None):
                self.error(
                    f"{path}.visibility",
                    _(
                        "must be 1 (host only), 2 (host and the submitting team) or 3 (public), not %(visibility)s."
                    )
                    % {"visibility": visibility},
                )
            split = PhaseSplitSpec(
                challenge_phase_id=refs["challenge_phase_id"] or 0,
                leaderboard_id=refs["leaderboard_id"] or 0,
                dataset_split_id=refs["dataset_split_id"] or 0,
                visibility=visibility or 3,
                leaderboard_decimal_precision=self.integer(
                    item, "leaderboard_decimal_precision", path, default=2, maximum=2**15 - 1
                )
                or 0,
                is_leaderboard_order_descending=self.boolean(
                    item, "is_leaderboard_order_descending", path, default=True
                ),
                show_execution_time=self.boolean(item, "show_execution_time", path, default=False),
                show_leaderboard_by_latest_submission=self.boolean(
                    item, "show_leaderboard_by_latest_submission", path, default=False
                ),
            )
            if None in refs.values():
                continue
            pair = (split.challenge_phase_id, split.dataset_split_id)
            if pair in seen:
                self.error(
                    path,
                    _(
                        "repeats phase %(phase)s with dataset split %(split)s, already paired in %(other)s; a phase shows each split on one leaderboard only."
                    )
                    % {"phase": pair[0], "split": pair[1], "other": seen[pair]},
                )
                continue
            seen[pair] = path
            result.append(split)
        for phase in spec.phases:
            if not any(ps.challenge_phase_id == phase.id for ps in result):
                self.warning(
                    "challenge_phase_splits",
                    _(
                        "No phase split for phase %(id)s (%(codename)s): its submissions cannot appear on any leaderboard."
                    )
                    % {"id": phase.id, "codename": repr(phase.codename)},
                )
        return result

    def ids_written(self, data: dict, key: str) -> set[int]:
        value = data.get(key)
        if not isinstance(value, list):
            return set()
        ids = (to_int(item.get("id")) for item in value if isinstance(item, dict))
        return {i for i in ids if i is not None}
