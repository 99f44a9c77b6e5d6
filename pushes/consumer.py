"""The push-consumer core both consumers run: verify the push (token before body) -> decode the
message (a JSON object) -> the consumer's own handling -> settle a dead letter -> answer, with
one log line. A consumer (deliver, forward) supplies only `Handle`: what one message becomes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import flask

from common import logs
from common.deadlines import BodyDeadlines
from common.outcomes import Outcome, Reason
from common.request_log import Handled, Handler, logged
from publisher import Topic

from .answer import LEVELS, log_fields, push_answer
from .auth import push_verifier, read_push
from .dead_letters import settle
from .envelope import MalformedMessage, PushEnvelope, decode_json_object
from .result import Result
from .settings import PushSettings


@dataclass(frozen=True, slots=True)
class Consumed:
    """What a consumer made of one message: its `Result`, and its own log fields (what the
    message was: names, ids, codes; never values)."""

    result: Result
    fields: Mapping[str, Any] = field(default_factory=dict)


Handle = Callable[[dict[str, Any], PushEnvelope], Consumed]


def consumer(
    entry_point: str,
    handle: Handle,
    *,
    destination: str,
    dead_letters: Topic,
    settings: PushSettings,
    always: Mapping[str, Any] | None = None,
) -> Handler:
    """The request handler of a push consumer; `destination` names what it sends to in its log
    fields (`saasquatch`, `segment`); `always` are fields of every line (deliver's `dry_run`),
    a message that could not be decoded included."""

    verifier = push_verifier(settings)
    deadlines = BodyDeadlines(settings.BODY_TIMEOUT_SECONDS)

    def push(request: flask.Request) -> Handled:
        envelope = read_push(request, verifier, deadlines)
        try:
            message = decode_json_object(envelope.message.data)
        except MalformedMessage as error:
            consumed = Consumed(Result(Outcome.DEAD_LETTERED, Reason.MALFORMED_MESSAGE, str(error)))
        else:
            consumed = handle(message, envelope)
        result = settle(envelope, consumed.result, dead_letters)
        fields = log_fields(envelope, result, destination, {**(always or {}), **consumed.fields})
        return Handled(push_answer(result), fields, LEVELS[result.outcome])

    logger = logs.setup(settings.LOG_LEVEL)
    return logged(entry_point, push, logger, settings.GOOGLE_CLOUD_PROJECT)
