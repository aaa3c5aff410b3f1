"""Jobs for test_sweep.py (a module of its own so spawned workers and Ray can import it by value)."""

import os
import time


def sleepy(item):
    """Sleep so that later items finish first; item 'raise' raises, item 'crash' kills its process."""
    if item == "raise":
        raise ValueError("job failed on purpose")
    if item == "crash":
        os._exit(3)
    time.sleep(item)
    return {"slept": item, "xla": os.environ.get("XLA_FLAGS", "")}
