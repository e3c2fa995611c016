"""CodaLab (v1) and Codabench (v2) `competition.yaml` -> the same ChallengeSpec as EvalAI's.

What maps to what (docs/codalab.md says it for organisers):

- v1 `phases` (keyed by number) and v2 `phases` (a list) -> phases; v2 `tasks` -> dataset
  splits (a task is a split); a v1 phase has one split, its leaderboard's;
- leaderboards and their columns -> leaderboards and labels (a column's title, or v1
  `label`), `sorting`/`sort: asc` -> ascending; `computation` columns are filled by the
  runtime from the columns at `computation_indexes`;
- the programs and data every phase names are read (zip, or folder of the same name) into
  one evaluation package whose evaluate() is challenges/bundle/codalab_runtime.py: it
  runs them in the sandbox as the formats lay them out.

`images` maps a `docker_image` to the interpreter that stands in for it ("default": the
evaluation environment's own Python 3); what cannot run is refused here, at upload.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from challenges.bundle.archive import Folder
from challenges.bundle.codalab_columns import ColumnReader
from challenges.bundle.codalab_files import (
    FilesProblem,
    Program,
    _,
    first_syntax_error,
    read_program,
    read_tree,
)
from challenges.bundle.json_values import jsonable
from challenges.bundle.spec import (
    ChallengeSpec,
    DatasetSplitSpec,
    EvaluationScriptSpec,
    Limits,
    PhaseSpec,
    PhaseSplitSpec,
    Problem,
)
from challenges.bundle.values import config_problem, to_datetime, to_int
from challenges.bundle.yaml_reader import ParsedYaml

CONFIG_NAMES = ("competition.yaml", "competition.yml")
DEFAULT_IMAGE = "codalab/codalab-legacy:py37"
DEFAULT_TIME_LIMIT_S = 600
NO_END = dt.datetime(2099, 12, 31, tzinfo=dt.UTC)
RUNTIME = Path(__file__).with_name("codalab_runtime.py")
# Images whose programs are plain Python 3: the evaluation environment stands in unmapped.
_PYTHON3_IMAGES = re.compile(
    r"^(codalab/codalab-legacy:py3\d*|codalab/codabench[\w./-]*|python:3[\w.-]*)(@.*)?$"
)
_PYTHON2_IMAGES = re.compile(r"^(codalab/codalab-legacy(:py2\d*|:latest)?|python:2[\w.-]*)$")


def is_codalab(data: Any) -> bool:
    return isinstance(data, dict) and "challenge_phases" not in data and "phases" in data


def build_codalab_spec(
    parsed: ParsedYaml,
    *,
    config_file: str,
    folder: Folder,
    limits: Limits,
    problems: list[Problem],
    images: dict[str, str] | None = None,
    default_image: str = DEFAULT_IMAGE,
) -> ChallengeSpec | None:
    return _Translator(
        parsed, config_file, folder, limits, problems, images or {}, default_image
    ).run()


def _slug(text: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:40]
    return slug or fallback


class _Translator(ColumnReader):
    def __init__(self, parsed, config_file, folder, limits, problems, images, default_image):
        self.parsed, self.config_file, self.folder = parsed, config_file, folder
        self.limits, self.problems = limits, problems
        self.images, self.default_image = images, default_image
        self.data: dict = parsed.data
        self.v2 = str(self.data.get("version", "")).strip() == "2" or "tasks" in self.data
        self.files: dict[str, bytes] = {}
        self.programs: dict[str, str] = {}  # source -> package folder
        self.requirements: list[str] = []
        self.interpreter = "default"

    # -- problems ---------------------------------------------------------------------

    def error(self, key: str, message: str, *, file: str | None = None, line=None) -> None:
        self._add("error", key, message, file, line)

    def warning(self, key: str, message: str) -> None:
        self._add("warning", key, message, None, None)

    def _add(self, severity, key, message, file, line) -> None:
        self.problems.append(
            config_problem(
                self.parsed, self.config_file, severity, key, message, file=file, line=line
            )
        )

    # -- the whole --------------------------------------------------------------------

    def run(self) -> ChallengeSpec | None:
        d = self.data
        title = d.get("title")
        if not isinstance(title, str) or not title.strip():
            self.error("title", _("The competition has no title."))
            title = ""
        self.interpreter = self._interpreter()
        spec = ChallengeSpec(title=str(title).strip(), config_file=self.config_file)
        spec.raw_config = jsonable(d)
        spec.image = self._file_key("image")
        self._pages(spec)
        leaderboards, columns = self._leaderboards()
        spec.leaderboards = leaderboards
        phases_manifest = self._phases(spec, leaderboards, columns)
        for key in ("allow_public_submissions", "registration_auto_approve", "solutions"):
            if d.get(key):
                self.warning(key, _("Not supported here; ignored."))
        self.files["codalab.json"] = json.dumps(
            {
                "format": 2 if self.v2 else 1,
                "interpreter": self.interpreter,
                "detailed_results": bool(d.get("enable_detailed_results", not self.v2)),
                "phases": phases_manifest,
            },
            sort_keys=True,
            indent=1,
        ).encode()
        self.files["__init__.py"] = RUNTIME.read_bytes()
        self.files[Path(self.config_file).name] = self.folder.archive.read(
            self.config_file, self.limits.max_config_bytes
        )
        ordered = sorted(self.files.items())
        digest = hashlib.sha256()
        for name, content in ordered:
            digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
        spec.evaluation_script = EvaluationScriptSpec(
            files=dict(ordered),
            sha256=digest.hexdigest(),
            requirements="\n".join(dict.fromkeys(self.requirements)) or None,
            source=Path(self.config_file).name,
        )
        return spec

    def _interpreter(self) -> str:
        """What stands in for the bundle's docker_image: the mapped interpreter, or the
        evaluation's own Python 3 for Python images; anything else is refused."""
        image = self.data.get("docker_image") or self.default_image
        image = str(image).strip()
        if image in self.images:
            return self.images[image]
        if _PYTHON3_IMAGES.match(image) or _PYTHON2_IMAGES.match(image):
            # A Python 2 image unmapped: its programs still run if they compile under
            # Python 3 (checked per program, with the line when they do not).
            return "default"
        self.error(
            "docker_image",
            _(
                "The image %(image)s is not mapped to a local environment here and the default "
                "(Python 3) environment cannot stand in for it; ask the operators to map it "
                "(CODALAB_IMAGE_MAP) or use a Python image."
            )
            % {"image": image},
        )
        return "default"

    def _file_key(self, key: str) -> str | None:
        value = self.data.get(key)
        if not value:
            return None
        if not isinstance(value, str) or not self.folder.is_file(value.strip()):
            self.warning(
                key, _("%(file)s is not in the bundle; no logo is shown.") % {"file": value}
            )
            return None
        return value.strip()

    def _read_page(self, key: str, path: Any) -> str:
        if not isinstance(path, str) or not path.strip():
            return ""
        path = path.strip()
        if not self.folder.is_file(path):
            self.warning(
                key, _("%(file)s is not in the bundle; the page is left empty.") % {"file": path}
            )
            return ""
        text = self.folder.read(path, self.limits.max_text_file_bytes).decode("utf-8", "replace")
        if path.lower().endswith((".md", ".txt")):
            import html

            return f'<div class="markdown-source" style="white-space: pre-wrap">{html.escape(text)}</div>'
        return text

    def _pages(self, spec: ChallengeSpec) -> None:
        d = self.data
        if self.v2:
            spec.description = str(d.get("description") or "")
            pages = d.get("pages") or []
            extra = []
            for i, page in enumerate(pages if isinstance(pages, list) else []):
                if isinstance(page, dict):
                    body = self._read_page(f"pages[{i}].file", page.get("file"))
                    extra.append(f"<h2>{page.get('title', '')}</h2>\n{body}")
            spec.description = "\n".join([spec.description, *extra]).strip()
            spec.terms_and_conditions = self._read_page("terms", d.get("terms"))
        else:
            html_pages = d.get("html") if isinstance(d.get("html"), dict) else {}
            spec.description = self._read_page("html.overview", html_pages.get("overview")) or str(
                d.get("description") or ""
            )
            spec.short_description = str(d.get("description") or "")[:500]
            spec.evaluation_details = self._read_page(
                "html.evaluation", html_pages.get("evaluation")
            )
            spec.terms_and_conditions = self._read_page("html.terms", html_pages.get("terms"))
            spec.submission_guidelines = self._read_page("html.data", html_pages.get("data"))
            spec.end_date = to_datetime(d.get("end_date"))

    def _phases(self, spec, leaderboards, columns) -> dict[str, Any]:
        raw = self.data.get("phases")
        if self.v2:
            entries = [
                (f"phases[{i}]", p) for i, p in enumerate(raw if isinstance(raw, list) else [])
            ]
        else:
            entries = sorted(
                ((f"phases.{k}", p) for k, p in (raw.items() if isinstance(raw, dict) else [])),
                key=lambda e: (
                    to_int((e[1] or {}).get("phasenumber")) or to_int(e[0].split(".")[-1]) or 0
                ),
            )
        if not entries:
            self.error("phases", _("The competition has no phase."))
            return {}
        tasks = self._tasks() if self.v2 else {}
        manifest: dict[str, Any] = {}
        used_codes: set[str] = set()
        splits: dict[str, DatasetSplitSpec] = {}
        for n, (key, phase) in enumerate(entries, start=1):
            if not isinstance(phase, dict):
                self.error(key, _("A phase must be a mapping."))
                continue
            name = str(phase.get("name") or phase.get("label") or _("Phase %(n)s") % {"n": n})
            code = _slug(name, f"phase-{n}")
            while code in used_codes:
                code = f"{code}-{n}"
            used_codes.add(code)
            limit = to_int(phase.get("execution_time_limit")) or DEFAULT_TIME_LIMIT_S
            reported = len(self.problems)
            ps = PhaseSpec(
                id=n,
                name=name,
                codename=code,
                description=str(phase.get("description") or ""),
                start_date=to_datetime(phase.get("start") if self.v2 else phase.get("start_date")),
                end_date=to_datetime(phase.get("end")) if self.v2 else None,
                leaderboard_public=True,
                is_public=True,
                # CodaLab and Codabench put a scored submission on the leaderboard.
                is_submission_public=True,
                max_submissions=to_int(phase.get("max_submissions")) or 100000,
                max_submissions_per_day=to_int(phase.get("max_submissions_per_day")) or 100000,
                resources={"time_limit_s": limit},
                show_logs_to_participants=True,
            )
            if self.v2:
                phase_tasks = []
                for i, index in enumerate(phase.get("tasks") or []):
                    task = tasks.get(to_int(index))
                    if task is None:
                        self.error(
                            f"{key}.tasks[{i}]",
                            _("Task %(index)s is not among the competition's tasks (%(known)s).")
                            % {"index": index, "known": ", ".join(map(str, tasks)) or _("none")},
                        )
                        continue
                    phase_tasks.append(task)
            else:
                phase_tasks = [self._task(phase, key, code="results", name=_("Results"))]
            phase_tasks = [t for t in phase_tasks if t is not None]
            if not phase_tasks:
                if len(self.problems) == reported:  # else the reason is said already
                    self.error(key, _("The phase has no task to score submissions with."))
                continue
            for task in phase_tasks:
                split = task["split"]
                if split not in splits:
                    splits[split] = DatasetSplitSpec(
                        id=len(splits) + 1, name=task["name"], codename=split
                    )
                spec.phase_splits.append(
                    PhaseSplitSpec(
                        challenge_phase_id=n,
                        leaderboard_id=1,
                        dataset_split_id=splits[split].id,
                        is_leaderboard_order_descending=not self.first_column["ascending"],
                        leaderboard_decimal_precision=self.first_column["precision"] or 4,
                    )
                    if leaderboards
                    else None
                )
            spec.phase_splits = [p for p in spec.phase_splits if p is not None]
            if not self.v2:
                ps.public_data = [
                    p.strip()
                    for k in ("public_data", "starting_kit")
                    if isinstance((p := phase.get(k)), str) and self.folder.is_file(p.strip())
                ]
            spec.phases.append(ps)
            manifest[code] = {
                "time_limit_s": limit,
                "columns": columns,
                "tasks": [{k: v for k, v in t.items() if k != "name"} for t in phase_tasks],
            }
        spec.dataset_splits = list(splits.values())
        if spec.phases:
            ends = [p.end_date for p in spec.phases]
            for earlier, later in zip(spec.phases, spec.phases[1:], strict=False):
                if earlier.end_date is None and later.start_date is not None:
                    earlier.end_date = later.start_date
            spec.start_date = spec.phases[0].start_date
            spec.end_date = spec.end_date or (ends[-1] if ends else None)
            if spec.end_date is None:
                # CodaLab's last phase may run for ever; ours needs an end: far away, said.
                spec.end_date = NO_END
                self.warning(
                    "phases",
                    _("The last phase has no end; the competition is set to end %(end)s.")
                    % {"end": NO_END.date().isoformat()},
                )
        return manifest

    def _tasks(self) -> dict[int, dict]:
        found: dict[int, dict] = {}
        for i, task in enumerate(self.data.get("tasks") or []):
            key = f"tasks[{i}]"
            if not isinstance(task, dict):
                self.error(key, _("A task must be a mapping."))
                continue
            index = to_int(task.get("index")) if task.get("index") is not None else i
            name = str(task.get("name") or _("Task %(n)s") % {"n": index})
            made = self._task(task, key, code=_slug(name, f"task-{index}"), name=name)
            if made is not None:
                found[index] = made
        return found

    def _task(self, entry: dict, key: str, *, code: str, name: str) -> dict | None:
        """One task (v2) or phase (v1): its programs and data, read into the package."""
        task: dict[str, Any] = {"split": code, "name": name}
        scoring = entry.get("scoring_program")
        if not scoring:
            self.error(f"{key}.scoring_program", _("No scoring_program is named."))
            return None
        for role, program_key in (
            ("scoring", "scoring_program"),
            ("ingestion", "ingestion_program"),
        ):
            ref = entry.get(program_key)
            if not ref:
                continue
            program = self._program(f"{key}.{program_key}", str(ref))
            if program is None:
                return None
            task[role] = program
        for role, data_key in (("reference", "reference_data"), ("input", "input_data")):
            ref = entry.get(data_key)
            if not ref:
                continue
            folder = self._data(f"{key}.{data_key}", str(ref))
            if folder is None:
                return None
            task[role] = folder
        return task

    def _program(self, key: str, ref: str) -> dict | None:
        if ref in self.programs:
            return json.loads(self.programs[ref])
        try:
            program: Program = read_program(self.folder, ref, self.limits.max_script_bytes)
        except FilesProblem as exc:
            self.error(key, exc.message, file=exc.file or None, line=exc.line)
            return None
        where = f"programs/{_slug(ref, 'program')}"
        for name, content in program.files.items():
            self.files[f"{where}/{name}"] = content
        if "requirements.txt" in program.files:
            self.requirements.append(
                program.files["requirements.txt"].decode("utf-8", "replace").strip()
            )
        self._check_python(key, ref, program)
        made = {"folder": where, "command": program.command}
        self.programs[ref] = json.dumps(made)
        return made

    def _check_python(self, key: str, ref: str, program: Program) -> None:
        python = None if self.interpreter == "default" else self.interpreter
        try:
            found = first_syntax_error(program.files, python)
        except FilesProblem as exc:
            self.error("docker_image", exc.message)
            return
        if found is None:
            return
        name, line, message = found
        if python is None:
            text = _(
                "Does not compile under Python 3 (%(error)s): it looks like a Python 2 program, "
                "and no Python 2 environment is mapped here for this bundle's image (the "
                "operators map one with CODALAB_IMAGE_MAP), or port it to Python 3."
            ) % {"error": message}
        else:
            text = _("Does not compile under %(python)s (%(error)s).") % {
                "python": python,
                "error": message,
            }
        self.error(key, text, file=f"{ref.rstrip('/')}/{name}", line=line)

    def _data(self, key: str, ref: str) -> str | None:
        where = f"data/{_slug(ref, 'data')}"
        if any(name.startswith(where + "/") for name in self.files):
            return where
        try:
            files = read_tree(self.folder, ref, self.limits.max_script_bytes)
        except FilesProblem as exc:
            self.error(key, exc.message)
            return None
        for name, content in files.items():
            self.files[f"{where}/{name}"] = content
        if not files:
            self.files[f"{where}/.keep"] = b""
        return where
