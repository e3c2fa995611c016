"""Participants' models for tests: cloudpickle files of predict() written from source.

The functions are made in a namespace of their own (no importable module), so cloudpickle
stores them by value, as it does for a function defined in a participant's notebook.
"""

from __future__ import annotations

import importlib.machinery
import sys
import textwrap
import types
from pathlib import Path

import cloudpickle


def model_bytes(source: str, **closure) -> bytes:
    """`source` defines predict(features); `closure` names become its globals."""
    namespace = {"__name__": "participant_model", **closure}
    exec(textwrap.dedent(source), namespace)  # noqa: S102 - test models from our own source
    return cloudpickle.dumps(namespace["predict"], protocol=5)


def write_model(path: Path, source: str, **closure) -> Path:
    path.write_bytes(model_bytes(source, **closure))
    return path


def model_needing_a_missing_module(module: str = "lightgbm_not_installed_here") -> bytes:
    """A model whose pickle refers to a class of `module`, which the runtime lacks (as a
    LightGBM model unpickled where LightGBM is not installed)."""
    fake = types.ModuleType(module)
    fake.__spec__ = importlib.machinery.ModuleSpec(module, None)

    class Booster:
        def predict(self, features):
            return features

    Booster.__module__, Booster.__qualname__ = module, "Booster"
    fake.Booster = Booster
    sys.modules[module] = fake
    try:
        return model_bytes(
            """
            def predict(features):
                return booster.predict(features)
            """,
            booster=Booster(),
        )
    finally:
        del sys.modules[module]


GOOD = """
import pandas as pd

def predict(features):
    return pd.DataFrame({"prediction": features["f"] / 10.0}, index=features.index)
"""
SERIES = """
def predict(features):
    return features["f"]
"""
RAISES = """
def predict(features):
    raise ValueError("feature 'g' is missing")
"""
LOOP = """
def predict(features):
    while True:
        pass
"""
MEMORY = """
def predict(features):
    hog = bytearray(8 * 1024 ** 3)
    return hog
"""
