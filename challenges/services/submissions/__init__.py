"""Submissions: intake under quotas (intake, quotas), the state machine (transitions),
sweeping and recovery (sweeping), and the hosts' actions (host_actions).

The names the rest of the house uses are re-exported here, so callers import from
`challenges.services.submissions` and need not know the layout.
"""

from challenges.services.submissions.errors import (
    FileTooLarge,
    QuotaExceeded,
    StorageExceeded,
    SubmissionRefused,
    check_approved,
)
from challenges.services.submissions.host_actions import (
    phase_rescore,
    submission_cancel,
    submission_rerun,
)
from challenges.services.submissions.intake import (
    SubmissionFields,
    max_upload_bytes,
    submission_check_before_upload,
    submission_create,
    submission_reserve_id,
    validate_meta_attributes,
)
from challenges.services.submissions.quotas import (
    QuotaState,
    quota_state,
    team_storage_check,
    team_storage_used,
)
from challenges.services.submissions.sweeping import (
    REMOTE_WORKER_PREFIX,
    SweepReport,
    submissions_recover_worker,
    submissions_sweep,
)
from challenges.services.submissions.transitions import (
    ENDED,
    EVALUATE_TASK,
    EVALUATING,
    IN_FLIGHT,
    RANKED,
    TRANSITIONS,
    WAITING,
    EvaluationRecord,
    Status,
    phase_splits_by_codename,
    submission_advance,
    submission_claim,
    submission_enqueue,
    submission_fail,
    submission_record_outcome,
    submission_transition,
)

__all__ = [
    "check_approved",
    "ENDED",
    "EVALUATE_TASK",
    "EVALUATING",
    "IN_FLIGHT",
    "RANKED",
    "REMOTE_WORKER_PREFIX",
    "TRANSITIONS",
    "WAITING",
    "EvaluationRecord",
    "FileTooLarge",
    "QuotaExceeded",
    "QuotaState",
    "Status",
    "SubmissionFields",
    "StorageExceeded",
    "SubmissionRefused",
    "SweepReport",
    "max_upload_bytes",
    "phase_splits_by_codename",
    "phase_rescore",
    "quota_state",
    "submission_advance",
    "submission_cancel",
    "submission_check_before_upload",
    "submission_claim",
    "submission_create",
    "submission_enqueue",
    "submission_fail",
    "submission_record_outcome",
    "submission_reserve_id",
    "submission_rerun",
    "submission_transition",
    "submissions_recover_worker",
    "submissions_sweep",
    "team_storage_check",
    "team_storage_used",
    "validate_meta_attributes",
]
