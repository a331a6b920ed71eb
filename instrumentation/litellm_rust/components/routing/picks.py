"""Routing: the Router's picks served by Rust, as one component (`routing`).

Its parts, each given what it uses: the strategy picks (`strategies`), the router-core step glue
around a pick (`steps`), the whole picks answered without litellm's selection machinery
(`whole_picks`), and the native mirrors of the strategies' state that the picks read (`mirrors`,
`latency`), over the router core's shared records (`records`). They share one mode, breaker and
set of counts because they serve one decision: which deployment a request goes to.
"""

from dataclasses import dataclass

from litellm_rust._component import Component
from litellm_rust._litellm import ROUTING
from litellm_rust.components.routing import health
from litellm_rust.components.routing.latency import LatencyMirrors
from litellm_rust.components.routing.mirrors import UsageMirrors
from litellm_rust.components.routing.records import RecordsByCore
from litellm_rust.components.routing.steps import RoutingSteps
from litellm_rust.components.routing.strategies import StrategyPicks
from litellm_rust.components.routing.whole_picks import WholePicks
from litellm_rust.config import ComponentSettings, bounded


@dataclass(frozen=True)
class RoutingSettings(ComponentSettings):
    deployment_series_cap: int = bounded(50, 0)
    """Routing health metrics: a router with at most this many deployments is reported per
    deployment (its id an attribute); a larger one per model group. 0 always aggregates."""


class RoutingComponent(Component):
    name = "routing"
    settings_class = RoutingSettings

    def __init__(self) -> None:
        super().__init__()
        records = RecordsByCore(ROUTING.as_str_mapping)
        self.usage_mirrors = UsageMirrors()
        self.latency_mirrors = LatencyMirrors()
        self.strategies = StrategyPicks(self.control, self.usage_mirrors, self.latency_mirrors)
        self.steps = RoutingSteps(self.control, records)
        self.whole_picks = WholePicks(self.control, self.strategies, records)

    def sites(self):
        yield from self.strategies.sites()
        yield from self.steps.sites()
        yield from self.whole_picks.sites()

    def wrappers(self):
        return self.usage_mirrors.wrappers()

    def instruments(self):
        return health.instruments(lambda: self.control.settings.deployment_series_cap)

    def status(self) -> dict:
        return {
            **super().status(),
            "usage_mirror": self.usage_mirrors.status(),
            "latency_mirror": self.latency_mirrors.status(),
        }

    def compare(self, python_result: object, rust_result: object) -> bool | None:
        """A pick's shadow answer is the set of answers litellm's pick may give (`matches`: a
        strategy pick's choices, a whole pick's ids and answers), nothing to compare when they
        differ because what the pick reads moved in between; a step's is litellm's answer."""
        matches = getattr(rust_result, "matches", None)
        if matches is None:
            return python_result == rust_result
        if matches(python_result):
            return True
        read = rust_result.read
        return None if read is not None and read.moved(python_result) else False
