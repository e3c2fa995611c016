"""The evaluation sandbox (DESIGN section 6), bottom to top:

- limits.py, confine.py, child.py, streams.py, forked.py, warm_parent.py: standard library
  only. warm_parent.py runs by path with `python -I` and an empty environment and loads its
  siblings by path; they run in the warm parent and its children, never import Django or
  this package.
- runner.py: what a child gets (limits per phase, environment, uid) and how its end is
  judged (`classify_run`).
- forkserver.py: the worker's side of one warm parent (WarmEvaluator).
- evaluators.py: which warm parent runs a call (one per script version per worker process,
  or one for a single call: `run_evaluation`).
- check.py (with selfcheck/): the self-check a worker runs before taking work.
- process.py: the parent-death signal, for the worker itself.
"""
