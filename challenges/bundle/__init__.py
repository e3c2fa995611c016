"""Challenge bundles: a zip in, a validated `ChallengeSpec` out (`load_bundle`).

Layered bottom to top, each module importing only those below it:

    spec         the types: ChallengeSpec and its parts, Problem, BundleError, Limits
    names        member names and config paths, shown in messages
    archive      hostile-zip checks and capped reads            (spec, names)
    yaml_reader  safe YAML parsing with positions
    values       reading and checking config values             (spec, names, archive, yaml_reader)
    script       the evaluation script package                  (spec, names, archive, values)
    phases       the challenge_phases list                      (spec, names, values)
    config       EvalAI's keys and defaults -> ChallengeSpec    (all of the above)
    codalab_files     CodaLab/Codabench programs and data, metadata, compile checks (spec, names, archive)
    codalab_columns   their leaderboards and columns                     (spec, values, codalab_files)
    codalab           competition.yaml -> ChallengeSpec                  (the above but config)
    codalab_runtime   not imported: its source is the evaluate() of the package codalab builds
    loader       load_bundle and the Bundle it returns          (spec, names, archive, yaml_reader, config, codalab)

Callers import the public names from here.
"""

from challenges.bundle.loader import Bundle, load_bundle
from challenges.bundle.spec import (
    BundleError,
    ChallengeSpec,
    DatasetSplitSpec,
    EvaluationScriptSpec,
    LeaderboardSpec,
    Limits,
    PhaseSpec,
    PhaseSplitSpec,
    Problem,
    Severity,
)

__all__ = [
    "Bundle",
    "BundleError",
    "ChallengeSpec",
    "DatasetSplitSpec",
    "EvaluationScriptSpec",
    "LeaderboardSpec",
    "Limits",
    "PhaseSpec",
    "PhaseSplitSpec",
    "Problem",
    "Severity",
    "load_bundle",
]
