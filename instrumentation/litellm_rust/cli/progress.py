"""Progress lines for the long-running tools (`bench`, `demo`): one per phase, on stderr, so a user
sees what is being measured and for how long it has run while the tables on stdout stay unchanged.

    [  12.3s] routing: latency-based-routing n=100, litellm as shipped (round 3/5)
"""

import sys
import time
from collections.abc import Callable


class Progress:
    def __init__(self, tool: str, started: float | None = None, clock: Callable[[], float] = time.time) -> None:
        """`started`: the clock's reading the elapsed times count from (default: now); a worker
        process passes its parent's, so that their lines read as one timeline."""
        self.tool = tool
        self.clock = clock
        self.started = clock() if started is None else started

    def __call__(self, what: str) -> None:
        print(f"[{self.clock() - self.started:>6.1f}s] {self.tool}: {what}", file=sys.stderr, flush=True)
