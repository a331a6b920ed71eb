"""The pre-call checks' per-deployment windows kept while litellm's answer stays the same
(`components/precall_facts.py`), against litellm's own `_max_input_tokens` and the Router's own
pre-call checks."""

import asyncio
import logging

import litellm
import litellm_rust
import pytest
from litellm import Router
from litellm.router_api import ChangeSet
from litellm.router_rust.steps import precall
from litellm.types.router import Deployment, DiscoveredDeploymentModelInfo
from litellm_rust.components import components

GROUP = "g"
SHORT = [{"role": "user", "content": "hello there"}]
# ~250 tokens: over the small windows below, under every cost-map window.
LONG = [{"role": "user", "content": "hello there " * 120}]
# A model only these tests register, so editing its cost-map entry touches no other test.
REGISTERED = "openai/precall-facts-test-model"


def component():
    return components()["precall_facts"]


def litellms_window(router: Router, entry, group: str = GROUP):
    """litellm's own `_max_input_tokens` (held by the component: a module global would be a
    binding site that instrumenting rebinds)."""
    return component().reference(router._core._hosted, group, entry)


def entries(router: Router) -> list:
    return list(router._core._hosted._core_model_list)


def windows(router: Router, group: str = GROUP) -> list:
    """Each deployment's window as the pre-call checks read it now (the bound function)."""
    hosted = router._core._hosted
    return [precall._max_input_tokens(hosted, group, entry) for entry in entries(router)]


def litellms_windows(router: Router, group: str = GROUP) -> list:
    return [litellms_window(router, entry, group) for entry in entries(router)]


def window_counts() -> dict:
    return litellm_rust.status()["precall_facts"]["windows"]


# (group, requested name): the group's own name, and a name only a wildcard deployment serves.
ASKED = ((GROUP, GROUP), ("w/gpt-4o", "w/gpt-4o"))


def facts(router: Router, group: str, name: str):
    """A pre-call step's facts as the router core builds them, over every deployment."""
    ids = [entry["model_info"]["id"] for entry in entries(router)]
    step = {"model_group": group, "model": name, "candidates": ids, "pool": ids}
    return router._core._pre_call_facts(step, {"messages": SHORT}, SHORT, None)


def tokenizer_models(router: Router) -> list:
    """The model each pre-call step counts the prompt with (the bound method)."""
    return [facts(router, group, name)._tokenizer_model() for group, name in ASKED]


def litellms_tokenizer_models(router: Router) -> list:
    return [component().reference_tokenizer(facts(router, group, name)) for group, name in ASKED]


def deployment(deployment_id: str, model: str, group: str = GROUP, **model_info) -> dict:
    return {
        "model_name": group,
        "litellm_params": {"model": model, "api_key": "x", "mock_response": "hi"},
        "model_info": {"id": deployment_id, **model_info},
    }


def assorted_router(**router_args) -> Router:
    """Deployments whose windows come from every source the merge reads: the cost map, the
    deployment's own model_info, a base model, a registered model, none (unmapped), a wildcard."""
    return Router(
        model_list=[
            deployment("mini", "openai/gpt-4o-mini"),
            deployment("four", "openai/gpt-4o"),
            deployment("own", "openai/gpt-4o-mini", max_input_tokens=64),
            deployment("based", "openai/my-finetune", base_model="gpt-4o"),
            deployment("registered", REGISTERED),
            deployment("unmapped", "openai/precall-facts-unmapped"),
            deployment("small", "openai/gpt-4o", max_input_tokens=16),
            deployment("wild", "openai/*", group="w/*"),
        ],
        enable_pre_call_checks=True,
        routing_strategy="latency-based-routing",
        **router_args,
    )


@pytest.fixture
def registered_model():
    """`REGISTERED` in litellm's cost map for the test (only for this request's lifetime)."""

    def register(max_input_tokens: int) -> None:
        litellm.register_model(
            {REGISTERED: {"max_input_tokens": max_input_tokens, "litellm_provider": "openai", "mode": "chat"}},
            persist_across_reloads=False,
        )

    register(1000)
    return register


@pytest.mark.parametrize("mode", ["rust", "shadow"])
def test_windows_are_litellms(instrumented_as, counted_since_start, registered_model, mode):
    router = assorted_router()
    expected = litellms_windows(router)
    assert None in expected and 64 in expected and 16 in expected and 1000 in expected
    instrumented_as(mode)
    served = window_counts().get("served", 0)
    for _ in range(3):
        assert windows(router) == expected
    assert [precall._max_input_tokens(router._core._hosted, "w/anything", entry) for entry in entries(router)] == (
        litellms_windows(router, "w/anything")
    )
    counted = counted_since_start("precall_facts")
    if mode == "rust":
        assert window_counts()["served"] > served
    else:
        assert counted["shadow_comparisons"] > 0
    assert counted["shadow_mismatches"] == 0, counted["mismatch_details"]


def requests(router: Router, messages: list, count: int = 4, model: str = GROUP) -> list:
    """The deployments the router picks for `count` requests, or the error it raises."""

    async def run() -> list:
        picked = []
        for _ in range(count):
            try:
                response = await router.acompletion(model=model, messages=messages)
                picked.append(response._hidden_params["model_id"])
            except Exception as error:  # noqa: BLE001  # the error is the answer compared
                picked.append(f"{type(error).__name__}: {error}")
        return picked

    return asyncio.run(run())


def edits(router: Router, register):
    """A workload's edits, one at a time: the model list, model info, the cost map, aliases."""
    hosted = router._core._hosted
    yield "add", lambda: router.add_deployment(Deployment(**deployment("added", "openai/gpt-4o-mini")))
    yield "add another tokenizer's", lambda: router.add_deployment(Deployment(**deployment("turbo", "gpt-3.5-turbo")))
    yield "delete", lambda: router.apply(ChangeSet(delete=["four"]))
    yield "edit in place", lambda: hosted._core_get_model_info("own")["model_info"].__setitem__("max_input_tokens", 8)
    yield (
        "upsert",
        lambda: router.apply(
            ChangeSet(upsert=[Deployment(**deployment("mini", "openai/gpt-4o", max_input_tokens=32))])
        ),
    )
    yield "register_model", lambda: register(12)
    yield "model list", lambda: router.set_model_list([deployment("x", REGISTERED), deployment("y", "openai/gpt-4o")])
    yield "alias", lambda: router.apply(ChangeSet(assign={"model_group_alias": {"an-alias": GROUP}}))
    yield "register again", lambda: register(100_000)


def test_shadow_workload_with_edits_mid_run(instrumented_as, counted_since_start, registered_model):
    router = assorted_router()
    instrumented_as("shadow")
    compared = 0
    for name, edit in edits(router, registered_model):
        edit()
        requests(router, SHORT) + requests(router, LONG) + requests(router, LONG, model="an-alias")
        counted = counted_since_start("precall_facts")
        assert counted["shadow_mismatches"] == 0, (name, counted["mismatch_details"])
        assert counted["shadow_comparisons"] > compared, name  # kept windows were compared after the edit
        compared = counted["shadow_comparisons"]
        kept = [component().window(router._core._hosted, GROUP, entry) for entry in entries(router)]
        assert kept == litellms_windows(router), name


def test_rust_mode_answers_follow_every_edit(instrumented_as, registered_model):
    router = assorted_router()
    instrumented_as("rust")
    seen = set()
    for name, edit in edits(router, registered_model):
        windows(router), tokenizer_models(router)  # kept before the edit
        edit()
        assert windows(router) == litellms_windows(router), name
        assert tokenizer_models(router) == litellms_tokenizer_models(router), name
        seen.add(tokenizer_models(router)[0])
    assert 100_000 in windows(router)
    assert len(seen) > 1  # the edits changed the group's tokenizer model


@pytest.mark.parametrize("mode", ["rust", "shadow"])
def test_tokenizer_models_are_litellms(instrumented_as, counted_since_start, registered_model, mode):
    router = assorted_router()
    expected = litellms_tokenizer_models(router)
    instrumented_as(mode)
    served = litellm_rust.status()["precall_facts"]["tokenizer_models"].get("served", 0)
    for _ in range(3):
        assert tokenizer_models(router) == expected
    counted = counted_since_start("precall_facts")
    if mode == "rust":
        assert litellm_rust.status()["precall_facts"]["tokenizer_models"]["served"] > served
        assert counted["fallback_reasons"].get("unnamed_group", 0) >= 2  # the wildcard's name: litellm's
    else:
        assert counted["shadow_comparisons"] > 0
    assert counted["shadow_mismatches"] == 0, counted["mismatch_details"]


def test_rust_mode_picks_and_errors_are_litellms(instrumented_as, registered_model):
    small = Router(
        model_list=[deployment(f"s{i}", "openai/gpt-4o-mini", max_input_tokens=50 + i) for i in range(3)],
        enable_pre_call_checks=True,
        routing_strategy="latency-based-routing",
    )
    mixed = assorted_router()
    python = {"errors": requests(small, LONG), "short": requests(small, SHORT), "picks": requests(mixed, LONG, 12)}
    assert python["errors"][0].startswith("ContextWindowExceededError") and len(set(python["errors"])) == 1
    instrumented_as("rust")
    rust = {"errors": requests(small, LONG), "short": requests(small, SHORT), "picks": requests(mixed, LONG, 12)}
    assert rust["errors"] == python["errors"]
    assert set(rust["short"]) | set(python["short"]) <= {"s0", "s1", "s2"}
    # The windows too small for the long prompt (`own`, `small`) are never picked, in either mode.
    fits = {"mini", "four", "based", "registered", "unmapped"}
    assert set(rust["picks"]) <= fits and set(python["picks"]) <= fits


def test_discovered_limits_are_read_as_litellm_reads_them(instrumented_as):
    router = Router(model_list=[deployment("u0", "openai/precall-facts-unmapped")], enable_pre_call_checks=True)
    hosted = router._core._hosted
    instrumented_as("rust")
    assert windows(router) == [None]
    entry = hosted._core_get_model_info("u0")
    hosted._discovered_model_info_cache.set_cache(
        "u0", DiscoveredDeploymentModelInfo(deployment=entry, limits={"max_input_tokens": 4321})
    )
    assert windows(router) == litellms_windows(router) == [4321]
    hosted._discovered_model_info_cache.delete_cache("u0")
    assert windows(router) == litellms_windows(router) == [None]


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, int, str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, record.getMessage(), record.lineno))


@pytest.fixture
def router_lines():
    """The lines litellm logs on `LiteLLM Router`, at `level` while the test runs."""
    logger = logging.getLogger("LiteLLM Router")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    yield lambda new_level: (logger.setLevel(new_level), handler.lines)[1]
    logger.removeHandler(handler)
    logger.setLevel(level)


def azure_router() -> Router:
    """An Azure deployment without a base model (litellm logs an error each time it reads its window)
    and one whose base model is not mapped (its lookup raises: a debug line)."""
    params = {"api_key": "x", "api_base": "https://azure.example", "api_version": "2024-02-01"}
    return Router(
        model_list=[
            {"model_name": GROUP, "litellm_params": {"model": "azure/plain", **params}, "model_info": {"id": "a0"}},
            {
                "model_name": GROUP,
                "litellm_params": {"model": "azure/based", **params},
                "model_info": {"id": "a1", "base_model": "azure/precall-facts-unmapped"},
            },
        ],
        enable_pre_call_checks=True,
    )


@pytest.mark.parametrize("level", [logging.WARNING, logging.DEBUG])
def test_the_lines_litellm_logs_on_every_lookup_are_logged_on_every_call(instrumented_as, router_lines, level):
    router = azure_router()
    lines = router_lines(level)
    expected = litellms_windows(router)
    litellms_lines = list(lines)
    assert [line[1] for line in litellms_lines] == (
        [logging.ERROR] if level == logging.WARNING else [logging.ERROR, logging.DEBUG]
    )
    lines.clear()
    instrumented_as("rust")
    served = window_counts().get("served", 0)
    for _ in range(3):
        assert windows(router) == expected
    assert lines == litellms_lines * 3
    assert window_counts()["served"] == served + 4  # the first call computed and kept both


def test_a_dict_that_is_not_the_registrys_entry_is_litellms_counted(instrumented_as, counted_since_start):
    router = assorted_router()
    instrumented_as("rust")
    hosted = router._core._hosted
    copies = [dict(entry) for entry in entries(router)]
    assert [precall._max_input_tokens(hosted, GROUP, copy) for copy in copies] == [
        litellms_window(router, copy) for copy in copies
    ]
    assert counted_since_start("precall_facts")["fallback_reasons"]["unheld_deployment"] == len(copies)


def test_an_error_while_serving_falls_back_to_litellm_counted(instrumented_as, counted_since_start, monkeypatch):
    router = assorted_router()
    instrumented_as("rust")
    expected = litellms_windows(router)

    def broken() -> int:
        raise RuntimeError("injected")

    monkeypatch.setattr(component(), "_generation", broken)
    assert windows(router) == expected
    counted = counted_since_start("precall_facts")
    assert counted["fallbacks"] == len(expected)
    assert counted["fallback_reasons"] == {"rust_error": len(expected)}


def test_uninstrument_restores_litellms_functions(instrumented_as):
    sites = {
        (precall, "_max_input_tokens"): component().reference,
        (precall.PreCallFacts, "_tokenizer_model"): component().reference_tokenizer,
    }
    instrumentor = instrumented_as("rust")
    for (owner, name), original in sites.items():
        assert vars(owner)[name] is not original and vars(owner)[name].__wrapped__ is original
    instrumentor.uninstrument()
    assert all(vars(owner)[name] is original for (owner, name), original in sites.items())
