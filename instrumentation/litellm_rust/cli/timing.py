"""The benchmarks' one timing primitive: seconds per call of a thunk, from as many calls as fit in a budget.

Shared by every `litellm-rust bench` table so that their rows are measured the same way.
"""

import time
from collections.abc import Callable


def time_per_call(
    function: Callable[[], object], budget: float, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per call on `clock` (wall time by default), from as many calls as fit in `budget`
    seconds (at least one)."""
    calls, start = 0, clock()
    while True:
        function()
        calls += 1
        elapsed = clock() - start
        if elapsed >= budget:
            return elapsed / calls
