# EvalAI and evalserver import this package and call evaluate() once per submission.
from .main import evaluate, warm_up

__all__ = ["evaluate", "warm_up"]
