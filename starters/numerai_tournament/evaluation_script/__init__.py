from .main import evaluate

__all__ = ["evaluate"]
