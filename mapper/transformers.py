"""JSONata transformers: the expressions of the hosted v2 options (segments for identify, the
upsert of a track and its strategy), compiled once and evaluated per message within a bound.

jsonata-python (0.7.1) has three traps, each handled here and tested (an upgrade that changes
them is caught):

- its own bound (`set_runtime_bounds`) starts its clock when it is set, not when an evaluation
  starts, so a bound set once would expire for every message after the first moments;
- its recursion-depth count is not unwound by an evaluation that raised, so after a few
  failures every evaluation would be "too deep";
- a compiled expression is not thread-safe: `evaluate` binds `$` in the expression's own frame.

So each thread compiles its own copy (once, on its first message), and `_Bound` (our own, in
place of the library's) starts a fresh count and a fresh clock for every evaluation. Its clock
is the evaluating thread's CPU time, not the wall clock: with 32 request threads sharing one
GIL, a wall-clock bound would end innocent messages whenever a neighbour keeps the CPU busy.
JSONata has no I/O, so CPU time is all an evaluation spends.
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path
from typing import Any

import jsonata
from jsonata.jexception import JException

DEFAULT_TIMEOUT_MS = 200
DEFAULT_MAX_DEPTH = 300


class TransformerSyntaxError(ValueError):
    """An expression that does not compile; the message names the setting."""


class TransformerFailed(Exception):
    """An evaluation that raised or ran past its bound; `code` is JSONata's (`D1012`: timeout),
    or, for a Python exception the library let out that has no JSONata code we know, its class
    and the library function (`ValueError in parse_integer`, `library=True`)."""

    def __init__(self, code: str, library: bool = False, function: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.library = library
        self.function = function  # the JSONata function that failed, when known


class _Bound:
    """Depth and CPU time of one evaluation, checked as JSONata enters and leaves each node
    (the same hooks and error codes as the library's own bound: D1011 depth, D1012 time)."""

    def __init__(self, expression: jsonata.Jsonata, timeout_ms: int, max_depth: int) -> None:
        self._timeout_ms = timeout_ms
        self._seconds = timeout_ms / 1000
        self._max_depth = max_depth
        self._depth = 0
        self._deadline = 0.0
        expression.environment.set_evaluate_entry_callback(self._entered)
        expression.environment.set_evaluate_exit_callback(self._left)

    def start(self) -> None:
        self._depth = 0
        self._deadline = time.thread_time() + self._seconds

    def _entered(self, _expr: Any, _input: Any, env: Any) -> None:
        if not env.is_parallel_call:
            self._depth += 1
            self._check()

    def _left(self, _expr: Any, _input: Any, env: Any, _result: Any) -> None:
        if not env.is_parallel_call:
            self._depth -= 1
            self._check()

    def _check(self) -> None:
        if self._depth > self._max_depth:
            raise JException("D1011", -1)
        if time.thread_time() > self._deadline:
            raise JException("D1012", -1, self._timeout_ms)


class Transformer:
    """One JSONata expression from the setting `setting`."""

    @classmethod
    def of_setting(
        cls, setting: str, text: str | None, timeout_ms: int = DEFAULT_TIMEOUT_MS
    ) -> Transformer | None:
        """The setting's expression, or None when it is unset or blank (no transformer)."""
        return cls(setting, text.strip(), timeout_ms) if text and text.strip() else None

    def __init__(
        self,
        setting: str,
        text: str,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.setting = setting
        self.text = text
        self.timeout_ms = timeout_ms
        self.max_depth = max_depth
        self._local = threading.local()
        self._compiled()  # at start: a syntax error stops the service

    def _compile(self) -> jsonata.Jsonata:
        try:
            expression = jsonata.Jsonata(self.text)
        except JException as error:
            raise TransformerSyntaxError(
                f"{self.setting}: the JSONata expression does not parse: {error.error} "
                f"{_first_line(error)}"
            ) from None
        except RecursionError:
            raise TransformerSyntaxError(
                f"{self.setting}: the JSONata expression is nested too deeply"
            ) from None
        return expression

    def _compiled(self) -> tuple[jsonata.Jsonata, _Bound]:
        """This thread's copy of the expression and its bound."""
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            expression = self._compile()
            compiled = self._local.compiled = (
                expression,
                _Bound(expression, self.timeout_ms, self.max_depth),
            )
        return compiled

    def evaluate(self, message: Any) -> Any:
        """The expression's value for `message`, or `TransformerFailed`."""
        expression, bound = self._compiled()
        bound.start()
        try:
            return expression.evaluate(message)
        except JException as error:
            raise TransformerFailed(error.error) from None
        except RecursionError:
            raise TransformerFailed("D1011") from None  # Python's stack before JSONata's bound
        except Exception as error:  # the library's own bugs end the message, not the service
            raise library_failure(error) from None

    def __repr__(self) -> str:
        return f"Transformer({self.setting}={self.text!r})"


# jsonata-python functions that raise a Python exception where JSONata raises its own error:
# the library function -> (JSONata's name for it, JSONata's code for that failure).
LIBRARY_FAILURES = {
    "number": ("$number", "D3030"),  # "Unable to cast value to a number"
    "datetime_to_millis": ("$toMillis", "D3110"),  # a timestamp that is not ISO 8601
}


def library_failure(error: Exception) -> TransformerFailed:
    """A Python exception out of jsonata-python as the failure JSONata itself reports: its code
    when the function is one we know, else the function and the exception's class."""
    frames = traceback.extract_tb(error.__traceback__)
    inside = [
        frame.name
        for frame in frames
        if Path(frame.filename).parent.name == "jsonata" and not frame.name.startswith("_")
    ]
    function = inside[-1] if inside else ""
    if function in LIBRARY_FAILURES:
        name, code = LIBRARY_FAILURES[function]
        return TransformerFailed(code, function=name)
    where = f" in {function}" if function else ""
    return TransformerFailed(f"{type(error).__name__}{where}", library=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else ""
