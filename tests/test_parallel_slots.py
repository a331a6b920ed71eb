"""The router's `max_parallel_requests` slots taken by Rust: the same admissions and 429s as
litellm's own slots, request by request, on litellm's own limit objects, with nothing leaked."""

import asyncio
import copy

import litellm
import pytest
from accounting import counted, counted_since
from litellm.llms.custom_llm import CustomLLM
from litellm.router_rust.invoke import slots
from litellm.router_rust.invoke.endpoints import PLANS
from litellm.types.utils import GenericStreamingChunk
from litellm_rust import LiteLLMRustInstrumentor, _native, set_mode
from litellm_rust._bindings import binding_sites
from litellm_rust.components import components

REPLACED = ("max_parallel_requests_limit", "enter_deployment_slot", "deployment_slot")
MESSAGES = [{"role": "user", "content": "hi"}]


class GatedProvider(CustomLLM):
    """A provider whose calls wait on a gate, so concurrent requests hold their slots; a request
    whose content is "fail" raises once through."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def _wait(self) -> None:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1

    async def acompletion(self, *args, **kwargs):
        await self._wait()
        if kwargs["messages"][0]["content"] == "fail":
            raise litellm.BadRequestError(message="refused by the provider", model="m", llm_provider="gated")
        return litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": "ok"}}])

    async def astreaming(self, *args, **kwargs):
        yield _chunk("a", finished=False)
        await self._wait()
        yield _chunk("b", finished=True)


def _chunk(text: str, finished: bool) -> GenericStreamingChunk:
    return GenericStreamingChunk(
        text=text, is_finished=finished, finish_reason="stop" if finished else "", usage=None, index=0, tool_use=None
    )


@pytest.fixture
def provider():
    gated = GatedProvider()
    saved = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [{"provider": "gated", "custom_handler": gated}]
    yield gated
    litellm.custom_provider_map = saved


@pytest.fixture
def parallel_slots():
    return components()["parallel_slots"]


def router_with(limits: dict, **settings) -> litellm.Router:
    deployment = {"model_name": "g", "litellm_params": {"model": "gated/m", **limits}, "model_info": {"id": "d1"}}
    return litellm.Router(model_list=[deployment], num_retries=0, **settings)


def limit_of(router: litellm.Router):
    """litellm's cached `MaxParallelRequestsLimit` for the deployment (None without a limit)."""
    return router._port.routing_cache.get_cache(key="d1_max_parallel_requests_client", local_only=True)


def outcome(error: BaseException) -> str:
    if isinstance(error, litellm.RateLimitError):
        return f"429 {error.message} | model={error.model} | {error.category} | {error.rate_limit_type}"
    return f"{type(error).__name__}: {error}"


async def burst(router: litellm.Router, provider: GatedProvider, contents: list[str]) -> list[str]:
    """Every request started at once; once each is refused or waits in the provider, the gate
    opens. Each request's outcome, in order."""
    provider.gate = asyncio.Event()

    async def request(content: str) -> str:
        try:
            response = await router.acompletion(model="g", messages=[{"role": "user", "content": content}])
            return response.choices[0].message.content
        except Exception as error:
            return outcome(error)

    tasks = [asyncio.create_task(request(content)) for content in contents]
    while provider.waiting + sum(task.done() for task in tasks) < len(tasks):
        await asyncio.sleep(0)
    provider.gate.set()
    return await asyncio.gather(*tasks)


def run_bursts(limits: dict, provider: GatedProvider, **settings) -> tuple[list[list[str]], object]:
    """Two bursts of six requests (the second after the first's slots are back) on a fresh router,
    and the limit object they counted on."""
    router = router_with(limits, **settings)

    async def run():
        return [await burst(router, provider, ["hi"] * 6), await burst(router, provider, ["hi", "fail", "hi", "hi"])]

    return asyncio.run(run()), limit_of(router)


LIMITS = [
    ({"max_parallel_requests": 2}, {}),
    ({"rpm": 3}, {}),
    ({"tpm": 1000}, {}),  # int(1000 / 1000 * 6) = 6: every request of a burst
    ({"tpm": 100}, {}),  # int(0.6) = 0, raised to 1
    ({"max_parallel_requests": 1, "rpm": 5}, {}),
    ({}, {"default_max_parallel_requests": 2}),
    ({"max_parallel_requests": 0}, {}),  # 0: no limit object at all
]


@pytest.mark.parametrize(("limits", "settings"), LIMITS)
def test_each_request_is_admitted_or_refused_as_litellm_decides(limits, settings, provider, parallel_slots):
    reference, reference_limit = run_bursts(limits, provider, **settings)
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        for mode in ("rust", "shadow", "python"):
            set_mode("parallel_slots", mode)
            before = counted(parallel_slots)
            outcomes, limit = run_bursts(limits, provider, **settings)
            assert outcomes == reference, mode
            since = counted_since(parallel_slots, before)
            assert since.get("mismatches", 0) == 0, parallel_slots.control.status()["mismatch_details"]
            assert (mode == "python") == ("rust_calls" not in since), since
            assert limit is None if reference_limit is None else limit.in_flight == 0, mode
    finally:
        instrumentor.uninstrument()
    assert reference_limit is None or reference_limit.in_flight == 0


def test_the_refusal_is_litellms_own_429(provider, instrumented):
    outcomes, _ = run_bursts({"max_parallel_requests": 1}, provider)
    assert outcomes[0][0] == "ok"
    assert outcomes[0][1] == (
        "429 litellm.RateLimitError: Deployment has all max_parallel_requests slots in use. Deployment model_group=g, "
        "id=d1 already has max_parallel_requests=1 requests in flight. Raise max_parallel_requests (or the rpm/tpm it "
        "is derived from) for this deployment\n\nLiteLLM: model group 'g' failed with the error above. No fallback was "
        "attempted. | model=g | litellm_rate_limit | concurrent_requests"
    )


def stream_sequence(provider: GatedProvider) -> list[str]:
    """One slot: a stream holds it until exhausted, another until closed."""
    router = router_with({"max_parallel_requests": 1})
    limit_seen = []

    async def attempt() -> str:
        try:
            await router.acompletion(model="g", messages=MESSAGES, mock_response="ok")
            return "admitted"
        except litellm.RateLimitError:
            return "refused"

    async def run():
        provider.gate = asyncio.Event()
        steps = []
        stream = await router.acompletion(model="g", messages=MESSAGES, stream=True)
        limit_seen.append(limit_of(router))
        steps.append(f"stream open, in flight {limit_seen[0].in_flight}")
        steps.append(await attempt())
        provider.gate.set()
        steps.append("".join([chunk.choices[0].delta.content or "" async for chunk in stream]))
        steps.append(f"exhausted, in flight {limit_seen[0].in_flight}")
        steps.append(await attempt())
        provider.gate = asyncio.Event()
        stream = await router.acompletion(model="g", messages=MESSAGES, stream=True)
        steps.append(await attempt())
        chunks = aiter(stream)
        steps.append((await anext(chunks)).choices[0].delta.content)
        await chunks.aclose()
        steps.append(f"closed, in flight {limit_seen[0].in_flight}")
        steps.append(await attempt())
        return steps

    return asyncio.run(run())


def test_an_open_stream_holds_its_slot_until_exhausted_or_closed(provider, parallel_slots):
    reference = stream_sequence(provider)
    assert reference == [
        "stream open, in flight 1",
        "refused",
        "ab",
        "exhausted, in flight 0",
        "admitted",
        "refused",
        "a",
        "closed, in flight 0",
        "admitted",
    ]
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        before = counted(parallel_slots)
        assert stream_sequence(provider) == reference
        assert set(counted_since(parallel_slots, before)) == {"rust_calls"}  # no fallback
    finally:
        instrumentor.uninstrument()


def test_cancelled_and_failed_requests_give_their_slots_back(provider, instrumented):
    router = router_with({"max_parallel_requests": 3})

    async def run():
        provider.gate = asyncio.Event()
        tasks = [asyncio.create_task(router.acompletion(model="g", messages=MESSAGES)) for _ in range(3)]
        while provider.waiting < 3:
            await asyncio.sleep(0)
        assert limit_of(router).in_flight == 3
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert limit_of(router).in_flight == 0
        return await burst(router, provider, ["fail"] * 3 + ["hi"] * 2)

    outcomes = asyncio.run(run())
    assert [o.split(":")[0] for o in outcomes] == ["BadRequestError"] * 3 + ["429 litellm.RateLimitError"] * 2
    assert limit_of(router).in_flight == 0


def slot_sequence(clock: str) -> list[str]:
    """Slot calls on one deployment while its limit is edited and litellm's cached limit expires
    (600 s TTL): the edit counts only once litellm builds a new limit object."""
    router = router_with({"max_parallel_requests": 2})
    port, plan = router._port, PLANS["acompletion"]
    deployment = copy.deepcopy(router.registry().deployments("g")[0])
    memory = port.routing_cache.in_memory_cache
    now = [1_000.0]
    if clock == "custom":
        memory._clock = lambda: now[0]
    held, steps = [], []

    def enter() -> None:
        # The attempt's slot and `deployment_slot` (a file created on every deployment), in turn.
        kwargs = {"metadata": {}}
        try:
            if len(steps) % 2:
                slot = slots.deployment_slot(port, deployment, kwargs)
            else:
                slot = slots.enter_deployment_slot(port, plan, deployment, kwargs)
            held.append(slot.__enter__())
            steps.append(f"admitted by {slots.max_parallel_requests_limit(port, deployment, {}).max_parallel_requests}")
        except litellm.RateLimitError as error:
            steps.append(error.message)

    for _ in range(3):
        enter()
    deployment["litellm_params"]["max_parallel_requests"] = 4
    enter()
    key = "d1_max_parallel_requests_client"
    if clock == "custom":
        now[0] += 601
    else:
        memory.ttl_dict[key] = 0.0  # expired
    for _ in range(5):
        enter()
    for slot in held:
        slot.__exit__(None, None, None)
    steps.append(f"in flight after {limit_of(router).in_flight}")
    return steps


@pytest.mark.parametrize("clock", ["default", "custom"])
def test_an_edited_limit_counts_when_litellms_cached_limit_expires(clock, parallel_slots):
    reference = slot_sequence(clock)
    assert reference[:2] == ["admitted by 2"] * 2 and "max_parallel_requests=2" in reference[2] == reference[3]
    assert reference[4:8] == ["admitted by 4"] * 4 and "max_parallel_requests=4" in reference[8]
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        before = counted(parallel_slots)
        assert slot_sequence(clock) == reference
        assert set(counted_since(parallel_slots, before)) == {"rust_calls"}
    finally:
        instrumentor.uninstrument()


def sites(objects) -> set[tuple[str, str]]:
    return {(module.__name__, name) for module, name in binding_sites({id(o): o for o in objects})}


def test_instrument_rebinds_every_site_and_uninstrument_restores_them(parallel_slots):
    originals = [parallel_slots.references[name] for name in REPLACED]
    before = sites(originals)
    assert {("litellm.router_rust.invoke.slots", name) for name in REPLACED} | {
        ("litellm.router_rust.core", "enter_deployment_slot"),
        ("litellm.router_rust.core", "max_parallel_requests_limit"),
    } <= before
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        assert sites(originals) == set()
        assert sites(parallel_slots.replacements().values()) == before
    finally:
        instrumentor.uninstrument()
    assert sites(parallel_slots.replacements().values()) == set()
    assert sites(originals) == before


@pytest.mark.parametrize("fault", ["error", "panic"])
def test_a_rust_failure_is_served_by_litellm_and_counted(fault, provider, parallel_slots, instrumented):
    _native.inject_fault(fault)
    before = counted(parallel_slots)
    outcomes, limit = run_bursts({"max_parallel_requests": 2}, provider)
    _native.inject_fault(None)
    assert outcomes[0] == ["ok", "ok"] + [outcomes[0][2]] * 4 and outcomes[0][2].startswith("429 ")
    assert limit.in_flight == 0
    since = counted_since(parallel_slots, before)
    assert set(since) == {f"fallback:rust_{fault}"} and since[f"fallback:rust_{fault}"] >= 10


def test_shadow_mode_catches_a_wrong_rust_decision(provider, parallel_slots, instrumented):
    set_mode("parallel_slots", "shadow")
    router = router_with({"max_parallel_requests": 5})

    async def run():
        await burst(router, provider, ["hi"])  # litellm builds the limit (Rust compares nothing yet)
        _native.inject_fault("wrong_result")
        return await burst(router, provider, ["hi"] * 3)

    before = counted(parallel_slots)
    assert asyncio.run(run()) == ["ok"] * 3  # Python still decides
    since = counted_since(parallel_slots, before)
    assert since["mismatches"] == 1 and parallel_slots.control.breaker.state == "open", since


def unusual_sequence(case: str) -> list[str]:
    """Slot calls on a limit or deployment the Rust path leaves to litellm."""
    from litellm.router_utils.client_initalization_utils import MaxParallelRequestsLimit

    class OwnLimit(MaxParallelRequestsLimit):
        pass

    router = router_with({"max_parallel_requests": 2})
    port, plan = router._port, PLANS["acompletion"]
    deployment = copy.deepcopy(router.registry().deployments("g")[0])
    key = "d1_max_parallel_requests_client"
    if case == "subclassed_limit":
        port.routing_cache.set_cache(key=key, value=OwnLimit(2, "d1", "g"), local_only=True)
    elif case == "unusual_in_flight":
        slots.max_parallel_requests_limit(port, deployment, {}).in_flight = 0.0
    else:
        deployment = ["not", "a", "deployment"]  # litellm's lookup fails on it
    steps = []
    for _ in range(3):
        try:
            steps.append(f"admitted {slots.enter_deployment_slot(port, plan, deployment, {}).__enter__() is not None}")
        except Exception as error:
            steps.append(outcome(error))
    steps.append(f"in flight {getattr(limit_of(router), 'in_flight', None)!r}")
    return steps


@pytest.mark.parametrize("case", ["subclassed_limit", "unusual_in_flight", "lookup_raised"])
def test_what_the_rust_path_leaves_to_litellm_falls_back_counted(case, parallel_slots):
    reference = unusual_sequence(case)
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        before = counted(parallel_slots)
        assert unusual_sequence(case) == reference
        fallbacks = {
            name: count for name, count in counted_since(parallel_slots, before).items() if name.startswith("fallback:")
        }
        # Each call falls back (a failing lookup again inside litellm's enter, which reaches it instrumented).
        assert set(fallbacks) == {f"fallback:{case}"} and fallbacks[f"fallback:{case}"] >= 3
    finally:
        instrumentor.uninstrument()
