"""How every operator command stops: the first signal interrupts, later ones are let go, and a
signal that arrives while the handler runs never blocks it (pkill or `timeout` and a Ctrl-C at
once sent make run two SIGINTs together, and its stop hung for good)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import tools


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    saved[signal.SIGHUP] = signal.getsignal(signal.SIGHUP)
    tools.stop_on_interrupt()
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_the_first_signal_interrupts_and_later_ones_are_let_go(handlers: None) -> None:
    with pytest.raises(KeyboardInterrupt):
        tools._interrupted(signal.SIGINT, None)
    tools._interrupted(signal.SIGTERM, None)  # the stop runs on
    tools._interrupted(signal.SIGINT, None)


def _first_signal_with_a_second_at_step(step: int) -> dict[str, Any]:
    """Run the handler, and at its `step`-th step (a call or return a profiler sees) run the
    handler again, as a second signal arriving just then would. In a thread of its own, so a
    deadlock shows as a thread that never ends."""
    outcome: dict[str, Any] = {"interrupts": 0, "steps": 0}

    def profile(_frame: Any, _event: str, _arg: Any) -> None:
        outcome["steps"] += 1
        if outcome["steps"] != step:
            return
        sys.setprofile(None)  # the nested handler runs unobserved
        try:
            tools._interrupted(signal.SIGINT, None)
        except KeyboardInterrupt:
            outcome["interrupts"] += 1
        finally:
            sys.setprofile(profile)

    def first_signal() -> None:
        sys.setprofile(profile)
        try:
            tools._interrupted(signal.SIGINT, None)
        except KeyboardInterrupt:
            outcome["interrupts"] += 1
        finally:
            sys.setprofile(None)
        outcome["ended"] = True

    handler = threading.Thread(target=first_signal, daemon=True)
    handler.start()
    handler.join(timeout=10)  # a bound on a deadlock, not a wait for success: it ends at once
    return outcome


def test_a_second_signal_at_any_step_of_the_handler_never_blocks_it(handlers: None) -> None:
    """One KeyboardInterrupt in all, and the handler always ends, wherever the second signal
    comes (a `threading.Event` in the handler deadlocked when it came inside `Event.set`)."""
    step = 1
    while True:
        tools.stop_on_interrupt()  # a fresh first signal each time
        outcome = _first_signal_with_a_second_at_step(step)
        assert outcome.get("ended"), f"a second signal at step {step} blocked the handler"
        assert outcome["interrupts"] == 1, f"a second signal at step {step}"
        if outcome["steps"] < step:  # the handler had fewer steps: every one was tried
            break
        step += 1
    assert step > 1
