"""EvalAI's REST API, as thin adapters over our services and access rules (docs/evalai.md)."""
