"""What a user of the installed wheel sees: run by tests/test_wheel.py in a fresh venv, as a plain
script (which instruments in code) and under `opentelemetry-instrument` (which instrumented first).

Prints one JSON line: litellm's own counts (only where the script instruments: measured before),
the instrumented counts, the Router's pick and `status()`."""

import json

import litellm
import litellm_rust
from litellm_rust import LiteLLMRustInstrumentor, status

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Zürich? Answer in one word."},
    {"role": "assistant", "content": "Sunny."},
]
CASES = [
    {"model": "gpt-3.5-turbo", "messages": CONVERSATION},
    {"model": "gpt-4o", "messages": CONVERSATION, "tools": TOOLS, "tool_choice": "auto"},
    {"model": "gpt-4o-mini", "text": "<|endoftext|> tokens 12345 😀"},
    {"model": "gpt-4", "messages": CONVERSATION, "tools": TOOLS},
]

instrumentor = LiteLLMRustInstrumentor()
instrumented_before = instrumentor.is_instrumented_by_opentelemetry
litellm_counts = None if instrumented_before else [litellm.token_counter(**case) for case in CASES]
if not instrumented_before:
    instrumentor.instrument()
counts = [litellm.token_counter(**case) for case in CASES]
token_counter_status = status()["token_counter"]

router = litellm.Router(
    model_list=[
        {
            "model_name": "chat",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "x", "mock_response": "hi", "api_base": base},
            "model_info": {"id": base},
        }
        for base in ("https://a.example", "https://b.example")
    ],
    routing_strategy="latency-based-routing",
)
routing_calls_before = status()["routing"]["rust_calls"]
picked = router.get_available_deployment(model="chat", messages=CONVERSATION)["model_info"]["id"]
reply = router.completion(model="chat", messages=CONVERSATION).choices[0].message.content

print(
    json.dumps(
        {
            "package": litellm_rust.__file__,
            "instrumented_before": instrumented_before,
            "accelerated": hasattr(litellm.utils.token_counter, "__wrapped__"),
            "litellm_counts": litellm_counts,
            "counts": counts,
            "token_counter": token_counter_status,
            "picked": picked,
            "reply": reply,
            "routing_rust_calls": [routing_calls_before, status()["routing"]["rust_calls"]],
            "status": status(),
        }
    )
)
