"""litellm Router paths that count tokens end up on the Rust path."""

import asyncio

import pytest
from corpus import CHAT
from litellm import Router

TOKEN_COUNTING_ROUTERS = {
    "latency-based picks": {"routing_strategy": "latency-based-routing"},
    "usage-based-v2 picks": {"routing_strategy": "usage-based-routing-v2"},
    "pre-call checks": {"routing_strategy": "simple-shuffle", "enable_pre_call_checks": True},
}


def mock_router(**settings) -> Router:
    deployments = [
        {
            "model_name": "gpt-4o",
            # A tpm limit makes the latency and usage-v2 picks count input tokens (the Rust
            # routing path counts only when a limit can use the count).
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-test", "mock_response": "hi", "tpm": 10**9},
            "model_info": {"id": f"deployment-{index}"},
        }
        for index in range(5)
    ]
    return Router(model_list=deployments, **settings)


def rust_calls(component) -> int:
    return component.status()["rust_calls"]


def fallbacks(component) -> int:
    return component.status()["fallbacks"]


@pytest.mark.parametrize("name", list(TOKEN_COUNTING_ROUTERS))
def test_router_picks_count_tokens_in_rust(instrumented, token_component, name):
    router = mock_router(**TOKEN_COUNTING_ROUTERS[name])
    before, fallbacks_before = rust_calls(token_component), fallbacks(token_component)
    for _ in range(3):
        router.get_available_deployment(model="gpt-4o", messages=CHAT)
    assert rust_calls(token_component) == before + 3
    assert fallbacks(token_component) == fallbacks_before


@pytest.mark.parametrize("name", list(TOKEN_COUNTING_ROUTERS))
def test_router_requests_count_tokens_in_rust(instrumented, token_component, name):
    router = mock_router(**TOKEN_COUNTING_ROUTERS[name])

    async def requests():
        return [await router.acompletion(model="gpt-4o", messages=CHAT) for _ in range(3)]

    before, fallbacks_before = rust_calls(token_component), fallbacks(token_component)
    sync_responses = [router.completion(model="gpt-4o", messages=CHAT) for _ in range(3)]
    async_responses = asyncio.run(requests())
    assert rust_calls(token_component) >= before + 6
    assert fallbacks(token_component) == fallbacks_before
    assert {r.choices[0].message.content for r in sync_responses + async_responses} == {"hi"}
