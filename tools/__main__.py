"""`python -m tools COMMAND ...`: the operator commands in one place."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from tools import stop_on_interrupt

USAGE = """usage: python -m tools COMMAND [ARGS]

commands:
  setup          the one-time setup of a project (APIs, accounts, secrets, grants); safe to rerun
  run            the whole pipeline locally on the Pub/Sub emulator (what `make run` starts)
  provision      create or update the topics and subscriptions
  backfill       publish Segment messages from JSON Lines / JSON array files (.gz too)
  dead-letters   list, replay, export or discard dead-lettered messages
  webhooks       register, list or remove SaaSquatch's webhook subscription; send a signed one

`python -m tools COMMAND --help` describes each."""


def _commands() -> dict[str, Callable[[Sequence[str]], int]]:
    from tools import backfill, dead_letters, provision, run_local, setup, webhooks

    return {
        "setup": setup.main,
        "run": lambda _argv: run_local.run(),
        "provision": provision.main,
        "backfill": backfill.main,
        "dead-letters": dead_letters.main,
        "webhooks": webhooks.main,
    }


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if argv else 2
    commands = _commands()
    if argv[0] not in commands:
        print(f"unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    stop_on_interrupt()
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
