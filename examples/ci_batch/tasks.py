"""The function the batch runs: `faas submit --function tasks:score --input calls.jsonl`.

It is shipped to the endpoint by value, so the site does not need this file installed.
"""
import math


def score(x, weight=1.0):
    """The weighted root mean square of a list of measurements."""
    if not x:
        raise ValueError("score() needs at least one measurement")
    return round(weight * math.sqrt(sum(v * v for v in x) / len(x)), 6)
