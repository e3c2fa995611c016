"""Checking the `challenge_phases` of a challenge config, with EvalAI's defaults and
this platform's extensions (code submissions, public data, resources, final picks).
Part of `challenges.bundle`.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

from challenges.bundle.json_values import jsonable
from challenges.bundle.names import normalise_relative
from challenges.bundle.spec import ChallengeSpec, PhaseSpec
from challenges.bundle.values import MAX_BIG_INT, ConfigReader, kind, short, to_number

# EvalAI's model default plus .npz (numpy archives are common submissions).
DEFAULT_FILE_TYPES = ".json, .zip, .txt, .tsv, .gz, .csv, .h5, .npy, .npz"
ATTRIBUTE_TYPES = ("text", "radio", "checkbox", "boolean")
PHASE_KEYS = {
    "id", "name", "description", "codename", "start_date", "end_date", "test_annotation_file",
    "leaderboard_public", "is_public", "is_submission_public", "max_submissions_per_day",
    "max_submissions_per_month", "max_submissions", "max_concurrent_submissions_allowed",
    "allowed_submission_file_types", "is_restricted_to_select_one_submission",
    "is_partial_submission_evaluation_enabled", "default_submission_meta_attributes",
    "submission_meta_attributes", "allowed_email_ids", "disable_logs", "is_submission_paused",
    # extensions
    "submission_type", "test_input_file", "public_data", "resources", "max_final_submissions",
    "private_splits_reveal", "max_submission_size_bytes", "test_extra_file", "prediction_range",
    "show_logs_to_participants", "allow_late_submissions",
    "tournament",
}  # fmt: skip
PHASE_EVALAI_KEYS = {
    "challenge", "is_active", "environment_image", "slug", "annotations_uploaded_using_cli",
    "submission_artifact_retention_policy", "config_id", "dataset_split", "leaderboard",
    "is_submission_paused_reason",
}  # fmt: skip
RESOURCE_KEYS = ("cpus", "memory_mb", "time_limit_s")
TOURNAMENT_KEYS = (
    "cumulative_rounds",
    "round_hours",
    "rank_by",
    "validation_features",
    "example_predictions",
    "feature_neutral",
)
TOURNAMENT_RANK_BY = ("corr_mean", "sharpe")
INPUT_TYPES = (".parquet", ".pq", ".csv")
_FILE_TYPE = re.compile(r"\.[a-z0-9][a-z0-9_+\-]*(\.[a-z0-9][a-z0-9_+\-]*)*")


class PhaseChecker(ConfigReader):
    """The `challenge_phases` list; `config._Checker` adds the rest of the config."""

    def phases(self, data: dict, spec: ChallengeSpec) -> list[PhaseSpec]:
        result = []
        ids: dict[int, str] = {}
        codenames: dict[str, str] = {}
        for path, item in self.items(data, "challenge_phases", "", required=True):
            phase = self.phase(path, item)
            self.unique(ids, phase.id if phase.id >= 0 else None, f"{path}.id")
            self.unique(codenames, phase.codename or None, f"{path}.codename")
            if phase.id >= 0 and phase.codename:
                result.append(phase)
        return result

    def phase(self, path: str, item: dict) -> PhaseSpec:
        self.unknown(item, path, PHASE_KEYS, PHASE_EVALAI_KEYS)
        pid = self.integer(item, "id", path, default=None, required=True)
        phase = PhaseSpec(
            id=-1 if pid is None else pid,
            name=self.text(item, "name", path, required=True, max_len=200),
            codename=self.text(item, "codename", path, required=True, max_len=100).strip(),
        )
        phase.description = self.content(item, "description", path, missing="warning")
        phase.start_date = self.date(item, "start_date", path)
        phase.end_date = self.date(item, "end_date", path)
        self.dates_in_order(path, phase.start_date, phase.end_date)
        if item.get("test_annotation_file") is None:
            self.warning(
                f"{path}.test_annotation_file",
                _("is missing: evaluate() will get no annotation file for this phase."),
            )
        phase.test_annotation_file = self.file_ref(
            item, "test_annotation_file", path, missing="error"
        )

        phase.leaderboard_public = self.boolean(item, "leaderboard_public", path, default=False)
        phase.is_public = self.boolean(item, "is_public", path, default=False)
        phase.is_submission_public = self.boolean(item, "is_submission_public", path, default=False)
        phase.is_restricted_to_select_one_submission = self.boolean(
            item, "is_restricted_to_select_one_submission", path, default=False
        )
        phase.is_partial_submission_evaluation_enabled = self.boolean(
            item, "is_partial_submission_evaluation_enabled", path, default=False
        )
        phase.disable_logs = self.boolean(item, "disable_logs", path, default=False)
        phase.is_submission_paused = self.boolean(item, "is_submission_paused", path, default=False)
        phase.show_logs_to_participants = self.boolean(
            item, "show_logs_to_participants", path, default=False
        )
        if phase.is_submission_public and phase.is_restricted_to_select_one_submission:
            self.warning(
                f"{path}.is_submission_public",
                _(
                    "EvalAI refuses is_submission_public together with is_restricted_to_select_one_submission; here submissions stay private until the team picks one for the leaderboard."
                ),
            )

        phase.max_submissions_per_day = self.integer(
            item, "max_submissions_per_day", path, default=100000
        )
        phase.max_submissions = self.integer(item, "max_submissions", path, default=100000)
        # EvalAI: an absent monthly quota takes the total quota.
        monthly_default = (
            phase.max_submissions if item.get("max_submissions") is not None else 100000
        )
        phase.max_submissions_per_month = self.integer(
            item, "max_submissions_per_month", path, default=monthly_default
        )
        phase.max_concurrent_submissions_allowed = self.integer(
            item, "max_concurrent_submissions_allowed", path, default=3
        )
        # EvalAI's ChallengePhase.save(): never more running at once than allowed per day.
        if None not in (phase.max_submissions_per_day, phase.max_concurrent_submissions_allowed):
            phase.max_concurrent_submissions_allowed = min(
                phase.max_concurrent_submissions_allowed, phase.max_submissions_per_day
            )
        phase.allowed_submission_file_types = self.file_types(item, path)
        phase.submission_meta_attributes = self.meta_attributes(item, path)
        phase.default_submission_meta_attributes = self.default_meta_attributes(item, path)
        phase.allowed_email_ids = self.text_list(item, "allowed_email_ids", path)
        self.extensions(item, path, phase)
        return phase

    def file_types(self, item: dict, prefix: str) -> list[str]:
        path = f"{prefix}.allowed_submission_file_types"
        value = item.get("allowed_submission_file_types")
        if value is None:
            value = DEFAULT_FILE_TYPES
        if isinstance(value, str):
            parts: list[Any] = re.split(r"[,;\s]+", value)
        elif isinstance(value, list):
            parts = value
        else:
            self.error(
                path,
                _('must be a comma-separated list like ".json, .csv", not %(kind)s.')
                % {"kind": kind(value)},
            )
            return []
        result: list[str] = []
        for part in parts:
            if isinstance(part, bool) or not isinstance(part, str | int | float):
                self.error(
                    path, _("must list file extensions, not %(kind)s.") % {"kind": kind(part)}
                )
                continue
            ext = str(part).strip().lower()
            if not ext:
                continue
            ext = ext if ext.startswith(".") else "." + ext
            if not _FILE_TYPE.fullmatch(ext):
                self.error(
                    path,
                    _("%(part)s is not a file extension like .csv.") % {"part": repr(str(part))},
                )
            elif ext not in result:
                result.append(ext)
        if not result and isinstance(value, str) and not value.strip():
            self.warning(
                path,
                _("is empty; the default (%(default)s) is used.") % {"default": DEFAULT_FILE_TYPES},
            )
            return self.file_types({}, prefix)
        return result

    def meta_attributes(self, item: dict, prefix: str) -> list[dict[str, Any]]:
        result = []
        names: dict[str, str] = {}
        for path, attr in self.items(item, "submission_meta_attributes", prefix):
            name = self.text(attr, "name", path, required=True)
            if name in names:
                self.warning(
                    f"{path}.name",
                    _("%(name)s is already the name of %(names)s.")
                    % {"name": repr(name), "names": names[name]},
                )
            names.setdefault(name, path)
            if attr.get("description") is None:
                self.warning(path, _("has no description; participants see only its name."))
            raw_type = self.text(attr, "type", path, required=True)
            attr_type = raw_type.strip().lower()
            entry = jsonable(attr)
            if raw_type and attr_type not in ATTRIBUTE_TYPES:
                self.error(
                    f"{path}.type",
                    _("must be one of %(names)s, not %(raw_type)s.")
                    % {"names": ", ".join(ATTRIBUTE_TYPES), "raw_type": repr(raw_type)},
                )
            entry["type"] = attr_type
            if attr_type in ("radio", "checkbox"):
                options = attr.get("options")
                if not isinstance(options, list) or not options:
                    self.error(
                        f"{path}.options" if "options" in attr else path,
                        _(
                            'a %(attr_type)s attribute needs a non-empty list of options, like options: ["A", "B"].'
                        )
                        % {"attr_type": attr_type},
                    )
                else:
                    entry["options"] = self.text_list(attr, "options", path)
            result.append(entry)
        return result

    def default_meta_attributes(self, item: dict, prefix: str) -> list[dict[str, Any]]:
        result = []
        for path, attr in self.items(item, "default_submission_meta_attributes", prefix):
            entry = jsonable(attr)
            entry["name"] = self.text(attr, "name", path, required=True)
            if "is_visible" in attr:
                entry["is_visible"] = self.boolean(attr, "is_visible", path, default=True)
            result.append(entry)
        return result

    def extensions(self, item: dict, path: str, phase: PhaseSpec) -> None:
        submission_type = self.text(item, "submission_type", path, default="file").strip().lower()
        if submission_type not in ("file", "code"):
            self.error(
                f"{path}.submission_type",
                _("must be 'file' or 'code', not %(submission_type)s.")
                % {"submission_type": repr(submission_type)},
            )
        else:
            phase.submission_type = submission_type  # type: ignore[assignment]
        phase.test_input_file = self.file_ref(item, "test_input_file", path, missing="error")
        phase.test_extra_file = self.file_ref(item, "test_extra_file", path, missing="error")
        phase.tournament = self.tournament(item, path, submission_type)
        if submission_type == "code":
            # A tournament's models predict each round's live features, uploaded per round.
            if item.get("test_input_file") is None and phase.tournament is None:
                self.error(
                    f"{path}.test_input_file",
                    _(
                        "is required for a code phase: the hidden input the participants' code predicts on."
                    ),
                )
            for key in ("test_input_file", "test_extra_file"):
                self.model_input(getattr(phase, key), f"{path}.{key}")
            phase.prediction_range = self.prediction_range(item, path)
        else:
            for key in ("test_input_file", "test_extra_file", "prediction_range"):
                if item.get(key) is not None:
                    self.warning(
                        f"{path}.{key}",
                        _("is used by code phases only (submission_type: code); ignored here."),
                    )
        phase.public_data = self.public_data(item, path)
        phase.resources = self.resources(item, path)
        phase.max_final_submissions = self.integer(
            item, "max_final_submissions", path, default=None, minimum=1
        )
        phase.max_submission_size_bytes = self.integer(
            item, "max_submission_size_bytes", path, default=None, minimum=1, maximum=MAX_BIG_INT
        )
        phase.allow_late_submissions = self.boolean(
            item, "allow_late_submissions", path, default=False
        )
        reveal = item.get("private_splits_reveal")
        if reveal is not None:
            if isinstance(reveal, str) and reveal.strip().lower() in ("at_end", "by_host"):
                phase.private_splits_reveal = reveal.strip().lower()
            else:
                self.error(
                    f"{path}.private_splits_reveal",
                    _(
                        "can only be 'at_end' (private splits are shown once the phase ends) "
                        "or 'by_host' (when a host reveals them after the end), not %(kind)s."
                    )
                    % {"kind": kind(reveal)},
                )

    def tournament(self, item: dict, prefix: str, submission_type: str) -> dict | None:
        path = f"{prefix}.tournament"
        value = item.get("tournament")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(
                path,
                _(
                    "must be a mapping like {cumulative_rounds: 4, round_hours: 48, rank_by: corr_mean}, not %(kind)s."
                )
                % {"kind": kind(value)},
            )
            return None
        if submission_type != "code":
            self.error(
                path,
                _("needs submission_type: code (teams upload models that run on every round)."),
            )
        for key in value:
            if key not in TOURNAMENT_KEYS:
                self.warning(
                    f"{path}.{key}",
                    _("Unknown tournament setting: ignored (known: %(names)s).")
                    % {"names": ", ".join(TOURNAMENT_KEYS)},
                )
        result: dict[str, Any] = {
            "cumulative_rounds": self.integer(
                value, "cumulative_rounds", path, default=4, minimum=1, maximum=1000
            ),
        }
        hours = to_number(value.get("round_hours", 48))
        if hours is None or hours <= 0:
            self.error(
                f"{path}.round_hours",
                _("must be a positive number of hours, not %(kind)s.")
                % {"kind": kind(value.get("round_hours"))},
            )
            hours = 48
        result["round_hours"] = float(hours)
        rank_by = str(value.get("rank_by", "corr_mean")).strip().lower()
        if rank_by not in TOURNAMENT_RANK_BY:
            self.error(
                f"{path}.rank_by",
                _("must be one of %(names)s, not %(rank_by)s.")
                % {"names": ", ".join(TOURNAMENT_RANK_BY), "rank_by": short(rank_by)},
            )
            rank_by = "corr_mean"
        result["rank_by"] = rank_by
        # Validation data (DESIGN section 16): every new model runs on it at upload and
        # gets diagnostics; Parquet or CSV with `era` and `target` columns.
        for key in ("validation_features", "example_predictions"):
            rel = self.file_ref(value, key, path, missing="error")
            self.model_input(rel, f"{path}.{key}")
            result[key] = rel
        if result["example_predictions"] and not result["validation_features"]:
            self.warning(
                f"{path}.example_predictions",
                _("is used with validation_features only; ignored here."),
            )
        result["feature_neutral"] = self.boolean(value, "feature_neutral", path, default=False)
        return result

    def public_data(self, item: dict, prefix: str) -> list[str]:
        path = f"{prefix}.public_data"
        value = item.get("public_data")
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(
                path,
                _("must be a list of paths (- data/train.csv), not %(kind)s.")
                % {"kind": kind(value)},
            )
            return []
        result: list[str] = []
        for i, entry in enumerate(value):
            entry_path = f"{path}[{i}]"
            if not isinstance(entry, str) or not entry.strip():
                self.error(
                    entry_path,
                    _("must be the path of a file or folder in the bundle, not %(kind)s.")
                    % {"kind": kind(entry)},
                )
                continue
            rel = normalise_relative(entry)
            if rel is None:
                self.error(
                    entry_path,
                    _("must be a path inside the bundle, not %(entry)s.") % {"entry": short(entry)},
                )
            elif self.folder.is_file(rel):
                result.append(rel)
            elif self.folder.is_dir(rel) and self.folder.files_under(rel):
                result.extend(self.folder.files_under(rel))
            else:
                self.error(
                    entry_path,
                    _("names %(entry)s, which is not in the zip%(hint)s.")
                    % {"entry": short(entry), "hint": self.folder.hint(rel)},
                )
        return list(dict.fromkeys(result))

    def resources(self, item: dict, prefix: str) -> dict[str, Any]:
        path = f"{prefix}.resources"
        value = item.get("resources")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(
                path,
                _(
                    "must be a mapping like {cpus: 1, memory_mb: 2048, time_limit_s: 600}, not %(kind)s."
                )
                % {"kind": kind(value)},
            )
            return {}
        result = {}
        for key, raw in value.items():
            key_path = f"{path}.{key}"
            if key not in RESOURCE_KEYS:
                self.warning(
                    key_path,
                    _("Unknown resource '%(key)s': ignored (known: %(names)s).")
                    % {"key": key, "names": ", ".join(RESOURCE_KEYS)},
                )
                continue
            number = to_number(raw)
            if number is None or number <= 0:
                self.error(
                    key_path, _("must be a positive number, not %(kind)s.") % {"kind": kind(raw)}
                )
                continue
            result[key] = number
        return result

    def model_input(self, rel: str | None, path: str) -> None:
        """A code phase's input must be data pandas reads: Parquet or CSV with a header."""
        if rel is None:
            return
        lowered = rel.lower()
        if not lowered.endswith(INPUT_TYPES):
            self.error(
                path,
                _("must be a Parquet (.parquet) or CSV (.csv) file, not %(rel)s.")
                % {"rel": short(rel)},
            )
            return
        try:
            with self.folder.open(rel, cap=self.folder.size(rel)) as stream:
                head = stream.read(4096)
        except Exception as exc:
            self.error(
                path,
                _("names %(rel)s, which cannot be read: %(exc)s") % {"rel": short(rel), "exc": exc},
            )
            return
        if lowered.endswith((".parquet", ".pq")):
            if not head.startswith(b"PAR1"):
                self.error(
                    path,
                    _("names %(rel)s, which is not a Parquet file (no PAR1 header).")
                    % {"rel": short(rel)},
                )
            return
        first = head.split(b"\n", 1)[0].strip()
        try:
            header = [c.strip().strip('"') for c in first.decode("utf-8-sig").split(",")]
        except UnicodeDecodeError:
            self.error(path, _("names %(rel)s, which is not UTF-8 text.") % {"rel": short(rel)})
            return
        if not all(header):
            self.error(
                path,
                _("names %(rel)s, whose first line should be a header like id,feature_1,...")
                % {"rel": short(rel)},
            )
        elif "id" not in header:
            self.warning(
                path,
                _(
                    "%(rel)s has no `id` column: its first column (%(header)s) is the index that predictions must match."
                )
                % {"rel": short(rel), "header": repr(header[0])},
            )

    def prediction_range(self, item: dict, prefix: str) -> list[float] | None:
        path = f"{prefix}.prediction_range"
        value = item.get("prediction_range")
        if value is None:
            return None
        numbers = [to_number(v) for v in value] if isinstance(value, list) else []
        if len(numbers) != 2 or None in numbers or numbers[0] >= numbers[1]:
            self.error(
                path,
                _("must be [low, high] with low < high, like [0, 1], not %(kind)s.")
                % {"kind": kind(value)},
            )
            return None
        return [float(numbers[0]), float(numbers[1])]
