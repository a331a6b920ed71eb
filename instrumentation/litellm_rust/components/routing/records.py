"""The router core's deployment records, shared by every pick that reads them.

litellm 1.110's `RustCore._strategy_inputs` builds every candidate's dict on every pick (a
`RouterCoreHandle.deployment(id)` call and a copy each). The routing component's picks read each
router core's records once per registry (the handle and its `registry_version`, which every
model-list change moves) and share them with the Rust pick, which only reads them. Whatever a
caller receives (the pick's answer, litellm's own pick's candidates) is a fresh dict built as
`_strategy_inputs` builds it: no caller ever holds a shared record.
"""

import weakref
from contextvars import ContextVar
from typing import NamedTuple

SERVED_STRATEGIES = frozenset(
    {"latency-based-routing", "usage-based-routing", "usage-based-routing-v2", "cost-based-routing", "least-busy"}
)


class Records:
    """One router core's deployment records at one registry version, each built once, as
    `RustCore._strategy_inputs` builds a candidate's dict."""

    __slots__ = ("handle", "version", "_as_str_mapping", "_by_id", "_id_of")

    def __init__(self, handle, version: int, as_str_mapping) -> None:
        self.handle = handle
        self.version = version
        self._as_str_mapping = as_str_mapping
        self._by_id: dict[str, dict] = {}
        self._id_of: dict[int, str] = {}  # id(record) -> its deployment id; records live as long as this

    def fresh(self, deployment_id: str) -> dict:
        """A new dict for one candidate, as `_strategy_inputs` builds it."""
        return dict(self._as_str_mapping(self.handle.deployment(deployment_id)) or {})

    def records(self, ids: list) -> list:
        by_id = self._by_id
        try:
            return [by_id[deployment_id] for deployment_id in ids]
        except (KeyError, TypeError):
            return [self._record(deployment_id) for deployment_id in ids]

    def _record(self, deployment_id: object) -> dict:
        key = str(deployment_id)  # `_strategy_inputs` reads `deployment(str(id))`
        record = self._by_id.get(key)
        if record is None:
            record = self._by_id[key] = self.fresh(key)
            self._id_of[id(record)] = key
        return record

    def id_of(self, record: dict) -> str:
        return self._id_of[id(record)]


class RecordsByCore:
    """Each router core's `Records` at its current registry; a new handle or version starts afresh."""

    def __init__(self, as_str_mapping) -> None:
        self._as_str_mapping = as_str_mapping
        self._by_core: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def of(self, core) -> Records:
        handle = core._handle
        version = handle.registry_version()
        records = self._by_core.get(core)
        if records is None or records.handle is not handle or records.version != version:
            records = self._by_core[core] = Records(handle, version, self._as_str_mapping)
        return records


class SharedCandidates(NamedTuple):
    """A strategy step's candidates as the pick receives them (`listed`), with the shared records of
    the same ids, which only the Rust pick reads."""

    listed: list
    records: list
    ids: list
    source: Records

    def for_litellm(self) -> list:
        """litellm's own pick's candidates: never the shared records."""
        if self.listed is not self.records:
            return self.listed  # shadow mode: litellm's `_strategy_inputs` built them
        return [self.source.fresh(str(deployment_id)) for deployment_id in self.ids]

    def fresh_pick(self, record: dict | None) -> dict | None:
        """The Rust pick as litellm's pick returns it: a dict of the caller's own."""
        return None if record is None else self.source.fresh(self.source.id_of(record))

    def as_listed(self, records: list) -> list:
        """Rust's choices among the records, as the listed candidates at the same positions."""
        position = {id(record): index for index, record in enumerate(self.records)}
        return [self.listed[position[id(record)]] for record in records]


# The candidates `_strategy_inputs` last handed out with shared records, for the pick that follows
# it in the same `_answer_select` (`pick_async` / `pick_sync` take no router core).
_SHARED: ContextVar[SharedCandidates | None] = ContextVar("litellm_rust_shared_candidates", default=None)


def share(candidates: SharedCandidates) -> None:
    """Hand `candidates` to the pick that follows in this context."""
    _SHARED.set(candidates)


def shared_candidates(deployments: object) -> SharedCandidates | None:
    """The shared records behind a pick's `deployments`, when `_strategy_inputs` built them."""
    shared = _SHARED.get()
    if shared is None or shared.listed is not deployments:
        return None
    _SHARED.set(None)
    return shared
