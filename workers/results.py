"""The result parser lives in `challenges.results` (remote evaluation checks results too);
workers import it from here as before."""

from challenges.results import ParsedResult, ResultError, parse_result

__all__ = ["ParsedResult", "ResultError", "parse_result"]
