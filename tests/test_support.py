"""Each component is built on its own: one whose litellm names are missing stays on litellm's Python
and says why, the others are served, and the public API answers with any litellm or none."""

import json
import subprocess
import sys
import textwrap

import litellm_rust
from litellm_rust.components import COMPONENT_NAMES


def run(program: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_every_component_is_supported_and_says_what_serves_it(instrumented):
    status = litellm_rust.status()
    assert set(status) == set(COMPONENT_NAMES)
    assert all(state["supported"] and state["serving"] == "rust" for state in status.values()), status


def test_an_uninstrumented_component_is_served_by_python():
    assert {state["serving"] for state in litellm_rust.status().values()} == {"python"}


def test_a_component_whose_litellm_names_are_missing_stays_on_python_and_the_others_are_served():
    result = run(
        """
        import json, litellm
        from litellm_rust import _litellm
        # As on a litellm without the v3 limiter's store.
        _litellm.PROXY_LIMITS._paths["rate_limit_store"] = "litellm.redis.stores.rate_limits:NoSuchStore"
        from litellm_rust import LiteLLMRustInstrumentor, configure, status
        LiteLLMRustInstrumentor().instrument()
        litellm.token_counter(model="gpt-4o", text="hello")
        try:
            configure("proxy_limits", mode="shadow")
            refused = None
        except Exception as error:
            refused = str(error)
        print(json.dumps({"status": status(), "refused": refused}))
        """
    )
    proxy_limits = result["status"]["proxy_limits"]
    assert proxy_limits["supported"] is False and proxy_limits["instrumented"] is False
    assert proxy_limits["serving"] == "python"
    assert "NoSuchStore" in proxy_limits["reason"]
    assert "not supported" in result["refused"] and "NoSuchStore" in result["refused"]
    token_counter = result["status"]["token_counter"]
    assert token_counter["instrumented"] and token_counter["rust_calls"] == 1
    assert all(state["supported"] for name, state in result["status"].items() if name != "proxy_limits")


def test_without_litellm_the_public_api_answers():
    result = run(
        """
        import json, sys
        class NoLitellm:
            def find_spec(self, name, path=None, target=None):
                if name == "litellm" or name.startswith("litellm."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
        sys.meta_path.insert(0, NoLitellm())
        import litellm_rust
        answers = {
            "status": litellm_rust.status(),
            "stats": litellm_rust.stats(),
            "recommendations": litellm_rust.recommendations(),
        }
        litellm_rust.configure(mode="shadow")
        try:
            litellm_rust.count_tokens_batch("gpt-4o", ["a"])
        except RuntimeError as error:
            answers["count_tokens_batch"] = str(error)
        print(json.dumps(answers))
        """
    )
    assert all(state["supported"] is False and state["reason"] for state in result["status"].values())
    assert result["stats"] == {}
    assert "not supported" in result["count_tokens_batch"]


def test_without_the_opentelemetry_sdk_every_component_is_supported():
    """litellm does not require the SDK; names that import it are ones a component works without."""
    result = run(
        """
        import json, sys
        class NoSdk:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry.sdk" or name.startswith("opentelemetry.sdk."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
        sys.meta_path.insert(0, NoSdk())
        import litellm_rust
        print(json.dumps(litellm_rust.status()))
        """
    )
    assert {name: state.get("reason") for name, state in result.items() if not state["supported"]} == {}


def test_on_a_release_no_component_was_verified_on_every_component_stays_on_python_and_says_why():
    """Its names may all resolve (1.109.2 is between releases the tests passed on): not verified is not served."""
    result = run(
        """
        import json, litellm
        from litellm_rust import components
        components.version = lambda name: "1.109.2" if name == "litellm" else None
        from litellm_rust import LiteLLMRustInstrumentor, status
        LiteLLMRustInstrumentor().instrument()
        litellm.token_counter(model="gpt-4o", text="hello")
        print(json.dumps(status()))
        """
    )
    assert all(state["supported"] is False and state["serving"] == "python" for state in result.values()), result
    assert all("not on the installed 1.109.2" in state["reason"] for state in result.values()), result
