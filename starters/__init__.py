"""Example challenge bundles (EvalAI format) kept as source folders.

`python -m starters.build OUT_DIR` turns each folder into a loadable challenge zip; see
`starters.build`.
"""
