"""Limits shared through a real redis-server on 127.0.0.1: exact across processes, and no hang or
lost decision when Redis dies or stalls."""

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import metric_points
from litellm_rust import RateLimiter
from litellm_rust.redis_health import REDIS_HEALTH
from servers import wait_until


def shared(redis_server, **settings) -> RateLimiter:
    return RateLimiter(redis_url=redis_server.url, redis_timeout=0.2, **settings)


def test_a_shared_limit_is_exact_across_four_processes(redis_server):
    program = textwrap.dedent(
        f"""
        import sys
        from litellm_rust import RateLimiter
        limiter = RateLimiter(rpm=1_000, redis_url={redis_server.url!r}, redis_timeout=1.0)
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        print(sum(limiter.check("shared-key").allowed for _ in range(2_000)))
        """
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    admitted = [int(worker.communicate(timeout=120)[0]) for worker in workers]
    assert sum(admitted) == 1_000
    # The processes really competed for one limit (on a loaded 2-core machine a late starter can find
    # it spent already, so not every one of them need admit something).
    assert sum(count > 0 for count in admitted) >= 2


def test_threads_in_one_process_share_connections_exactly(redis_server):
    limiter = shared(redis_server, rpm=500)
    admitted = []
    threads = [
        threading.Thread(target=lambda: admitted.append(sum(limiter.check("k").allowed for _ in range(300))))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 500


def test_usage_recorded_by_one_process_limits_another(redis_server):
    first, second = shared(redis_server, tpm=100), shared(redis_server, tpm=100)
    assert first.check("team", tokens=10).allowed
    assert first.record_usage("team", tokens=85) is None
    refused = second.check("team", tokens=10)
    assert (refused.allowed, refused.refused_by, refused.remaining) == (False, "tpm", {"tpm": 5})
    assert 0 < refused.retry_after <= 60


def test_the_window_starts_at_the_first_hit_and_expires(redis_server):
    limiter = RateLimiter(limits=[("rps", "requests", 2, 0.3)], redis_url=redis_server.url)
    assert limiter.check("k").allowed and limiter.check("k").allowed
    assert not limiter.check("k").allowed
    wait_until(lambda: limiter.check("k").allowed, 5, "the window to expire", interval=0.05)


@pytest.mark.parametrize("key", ["", "\x00\x01{}:*", "ключ🔑 with spaces"])
def test_odd_keys_are_kept_apart(redis_server, key):
    limiter = shared(redis_server, rpm=1)
    assert limiter.check(key).allowed and not limiter.check(key).allowed
    assert limiter.check(key + "x").allowed


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_dead_redis_gives_the_fail_mode_and_reconnects(redis_server, fail_open):
    limiter = shared(redis_server, rpm=10, fail_open=fail_open)
    assert limiter.check("k").error is None
    redis_server.stop()
    outcome = limiter.check("k")
    assert (outcome.allowed, outcome.error is not None) == (fail_open, True)
    assert limiter.redis_errors >= 1
    assert limiter.record_usage("k", tokens=5) is None  # rpm only: nothing to record
    redis_server.start()
    recovered = wait_until(lambda: (lambda o: o if o.error is None else None)(limiter.check("k")), 10, "reconnection")
    assert recovered.allowed and recovered.remaining == {"rpm": 9}  # a fresh server, a fresh window


def test_an_outage_is_counted_and_its_start_and_end_are_events(redis_server, otel):
    otel.instrument()
    limiter = shared(redis_server, rpm=100)
    assert limiter.check("k").error is None
    errors_before = REDIS_HEALTH.errors
    redis_server.stop()
    for _ in range(3):
        assert limiter.check("k").error is not None
    assert limiter.record_usage("k", tokens=1) is None  # nothing to record for an rpm-only limiter
    redis_server.start()
    wait_until(lambda: limiter.check("k").error is None, 10, "reconnection")
    assert REDIS_HEALTH.errors - errors_before >= 3
    [(_, point)] = metric_points(otel.reader)["litellm_rust.redis.errors"]
    assert point.value == REDIS_HEALTH.errors and point.attributes == {"litellm_rust.operation": "rate_limits"}
    events = [span.name for span in otel.exporter.get_finished_spans() if span.name.startswith("litellm_rust.redis")]
    assert events == ["litellm_rust.redis.unavailable", "litellm_rust.redis.available"]


def test_a_stalled_redis_times_out_instead_of_hanging(redis_server):
    limiter = shared(redis_server, rpm=10, fail_open=False)
    assert limiter.check("k").allowed
    stalled = redis_server.command("DEBUG", "SLEEP", "2")
    try:
        time.sleep(0.1)  # let the server enter its sleep
        outcome = limiter.check("k")
        assert (outcome.allowed, outcome.error is not None) == (False, True)
    finally:
        stalled.close()
    wait_until(lambda: limiter.check("k").error is None, 10, "Redis to answer again")


def test_a_stalled_redis_is_retried_with_backoff_not_on_every_check(redis_server):
    limiter = shared(redis_server, rpm=1000, fail_open=True)
    assert limiter.check("k").error is None
    opened = limiter.redis_connections
    stalled = redis_server.command("DEBUG", "SLEEP", "1")
    try:
        time.sleep(0.1)  # let the server enter its sleep
        outcomes = [limiter.check("k") for _ in range(50)]
    finally:
        stalled.close()
    assert all(outcome.allowed and outcome.error is not None for outcome in outcomes)
    assert "next attempt in" in outcomes[-1].error
    # one timed-out call on the pooled connection, then checks fail fast until a reconnect is due
    assert limiter.redis_connections - opened < 5
    wait_until(lambda: limiter.check("k").error is None, 10, "reconnection")
    # the connection that answered is pooled and reused
    opened = limiter.redis_connections
    assert all(limiter.check("k").error is None for _ in range(20))
    assert limiter.redis_connections == opened


def test_redis_settings_are_validated():
    with pytest.raises(ValueError, match="invalid Redis URL"):
        RateLimiter(rpm=1, redis_url="not-a-url")
    with pytest.raises(ValueError, match="fixed windows"):
        RateLimiter(rpm=1, redis_url="redis://127.0.0.1:1/0", algorithm="gcra")
    with pytest.raises(ValueError, match="timeout"):
        RateLimiter(rpm=1, redis_url="redis://127.0.0.1:1/0", redis_timeout=0)
