# EvalAI and evalserver import this package and call evaluate() once per submission.
from .main import evaluate

__all__ = ["evaluate"]
