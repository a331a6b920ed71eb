"""Routing as three components, each with its own mode, breaker, counts and telemetry series.

- `routing` (`picks`): which deployment a request goes to. The strategy picks (`strategies`), the
  whole picks (`whole_picks`), the router-core step glue around a pick (`steps`) and the native
  mirrors of the strategies' state the picks read (`mirrors`, `latency`). One decision, so one
  breaker: a mismatch in any of them is a wrong pick.
- `router_cache` (`router_cache`): the strategy handlers' reads and writes of the router cache,
  answered without litellm's debug text. Every callback of a served router goes through it, and a
  mismatch there is a cache read, not a pick: it must not take the picks out of service.
- `group_usage` (`group_usage`): the per-request usage work kept per model list (the usage
  counters' names, the prompt-management check, whether a deployment's usage is tracked). It runs
  on every request whatever the strategy, on the registry rather than a strategy's state.

`health` reads the routers the picks saw for the routing gauges. Modules import downward only:
`picks` -> `whole_picks` -> `strategies` -> (`latency` -> `mirrors`, `records`, `health`,
`router_cache`); `steps` -> `records`; `group_usage` imports none of them. This module imports
nothing, so `health` loads without litellm.
"""
