"""`Transformer`: one compiled JSONata expression, bounded per evaluation, safe across threads.

The first test of each pair shows a trap of jsonata-python 0.7.1 on the bare library; if an
upgrade removes it, that test fails and says so, and the workaround can go. The second shows
`Transformer` is not caught by it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonata
import pytest
from jsonata.jexception import JException

from common.outcomes import Outcome, Reason
from mapper import MappingOptions, map_message
from mapper.transformers import Transformer, TransformerFailed

from ..factories import NOW

SLOW = "$count($map([1..1000000], function($v) { $v * 2 }))"
# Recursion as deep as the message's `n`.
DEPTH = "($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(n))"


def wait_until_past(start_ms: float, ms: float) -> None:
    """Until the wall clock (the library's) is `ms` past `start_ms`; a condition, not a guess."""
    while time.time() * 1000 <= start_ms + ms:
        time.sleep(0.005)


# --- trap 1: the timeout clock starts when the bounds are set, not per evaluation -------------


def test_trap_the_librarys_clock_runs_from_when_the_bounds_were_set() -> None:
    expression = jsonata.Jsonata("a")
    start = time.time() * 1000
    expression.environment.set_runtime_bounds(50, 300)
    wait_until_past(start, 60)
    with pytest.raises(JException) as error:
        expression.evaluate({"a": 1})  # instant, and still "too long"
    assert error.value.error == "D1012"


def test_each_evaluation_gets_its_own_time() -> None:
    transformer = Transformer("T", "a", timeout_ms=50)
    start = time.time() * 1000
    wait_until_past(start, 60)
    assert transformer.evaluate({"a": 1}) == 1
    assert transformer.evaluate({"a": 2}) == 2


# --- trap 2: the depth count is not unwound by an evaluation that raised ----------------------


def test_trap_the_librarys_depth_count_survives_a_failure() -> None:
    expression = jsonata.Jsonata(DEPTH)
    expression.environment.set_runtime_bounds(10_000, 100)
    assert expression.evaluate({"n": 5}) == 5
    with pytest.raises(JException) as error:
        expression.evaluate({"n": 1000})
    assert error.value.error == "D1011"
    with pytest.raises(JException) as again:
        expression.evaluate({"n": 5})  # shallow, but the count was left high
    assert again.value.error == "D1011"


def test_a_failure_leaves_the_next_evaluation_a_full_depth() -> None:
    transformer = Transformer("T", DEPTH, max_depth=100)
    for _ in range(3):
        with pytest.raises(TransformerFailed) as error:
            transformer.evaluate({"n": 1000})
        assert error.value.code == "D1011"
        assert transformer.evaluate({"n": 5}) == 5


# --- trap 3: a compiled expression is shared state --------------------------------------------


def racing(evaluate_a, evaluate_b) -> dict[str, Any]:
    """Thread A stops inside its evaluation while B evaluates, then A finishes."""
    results: dict[str, Any] = {}
    a = threading.Thread(target=lambda: results.setdefault("A", evaluate_a()))
    a.start()
    assert INSIDE.wait(10)
    results["B"] = evaluate_b()
    GATE.set()
    a.join(10)
    return results


INSIDE = threading.Event()
GATE = threading.Event()


def block(who: str) -> str:
    """`$block(id)`: stops message "A" until the test lets it go."""
    if who == "A":
        INSIDE.set()
        assert GATE.wait(10)
    return ""


@pytest.fixture(autouse=True)
def _fresh_events() -> None:
    INSIDE.clear()
    GATE.clear()


def test_trap_the_library_binds_the_message_in_the_expressions_own_frame() -> None:
    expression = jsonata.Jsonata("$block(id) & $$.id")
    expression.register_lambda("block", block)
    results = racing(
        lambda: expression.evaluate({"id": "A"}), lambda: expression.evaluate({"id": "B"})
    )
    assert results == {"A": "B", "B": "B"}  # A's answer is computed from B's message


class Blocking(Transformer):
    def _compile(self) -> jsonata.Jsonata:
        expression = super()._compile()
        expression.register_lambda("block", block)
        return expression


def test_each_thread_evaluates_its_own_copy() -> None:
    transformer = Blocking("T", "$block(id) & $$.id")
    results = racing(
        lambda: transformer.evaluate({"id": "A"}), lambda: transformer.evaluate({"id": "B"})
    )
    assert results == {"A": "A", "B": "B"}


def test_many_threads_at_once_each_get_their_own_answer() -> None:
    # The bound is not what this test is about: generous, so only a wrong answer fails it.
    transformer = Transformer(
        "T", '$string($sum($map([1..n], function($v) { $v }))) & "/" & id', timeout_ms=5000
    )
    start = threading.Barrier(16)

    def evaluate(n: int) -> Any:
        if n < 16:
            start.wait(10)  # the first evaluation of every thread at the same moment
        return transformer.evaluate({"n": 200 + n, "id": f"m{n}"})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(evaluate, range(400)))
    assert answers == [f"{(200 + n) * (201 + n) // 2}/m{n}" for n in range(400)]


def test_the_bound_is_the_threads_cpu_time_not_time_spent_waiting() -> None:
    """32 request threads share one GIL: time spent waiting for it must not end a message."""
    transformer = Blocking("T", "$block(id) & id", timeout_ms=20)
    results: dict[str, Any] = {}
    a = threading.Thread(target=lambda: results.setdefault("A", transformer.evaluate({"id": "A"})))
    a.start()
    assert INSIDE.wait(10)
    wait_until_past(time.time() * 1000, 60)  # three bounds of wall time while A waits
    GATE.set()
    a.join(10)
    assert results == {"A": "A"}


# --- the bound, through the mapper ---------------------------------------------------------------


def test_a_slow_expression_ends_as_transformer_failed_and_the_next_message_maps() -> None:
    options = MappingOptions(
        identify_segments_transformer=Transformer(
            "IDENTIFY_SEGMENTS_TRANSFORMER", f'n = 1 ? ({SLOW} ; "slow") : "fast"', timeout_ms=100
        )
    )

    def identify(n: int) -> dict[str, Any]:
        return {"type": "identify", "userId": "u-1", "traits": {}, "n": n}

    slow = map_message(identify(1), options, now=NOW)
    assert (slow.outcome, slow.reason) == (Outcome.DEAD_LETTERED, Reason.TRANSFORMER_FAILED)
    assert slow.detail == "IDENTIFY_SEGMENTS_TRANSFORMER timed out after 100 ms (JSONata D1012)"
    fast = map_message(identify(2), options, now=NOW)
    assert fast.outcome is Outcome.DELIVERED
    assert fast.calls[0].body["segments"] == ["fast"]
