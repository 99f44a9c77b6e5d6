"""What a webhook's signature check costs when SaaSquatch's key set (JWKS) misbehaves, next to
the floor of a key already known.

    .venv/bin/python bench/webhook_keys.py

Each row is one signed webhook checked by a fresh `JwsVerifier` (timeout 5 s, or 20 s for the
held JWKS) against a local JWKS stand-in that counts its fetches: 10 MB of keys (with and
without a declared length), a JWKS that holds its answer, and 20 requests at once for kids it
does not know while it holds. The floor is the same check with the key cached. Before the key
cache (PyJWKClient), the 10 MB set took 54 s per request and a held JWKS 15 to 65 s.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from _support import table

from common.http import EarlyAnswer
from stream.signature import JwsVerifier
from tests.support.webhook_signing import KID, Answer, JwksStandIn, detached_jws, huge_key_set
from tests.support.webhook_signing import new_key as new_rsa_key

KEY = new_rsa_key()
BODY = b'{"id":"bench","type":"test","tenantAlias":"t","live":true,"created":0,"data":{}}'


def checked(verifier: JwsVerifier, kid: str = KID) -> tuple[str, float]:
    """The answer (`ok`, or the refusal's status and reason) and the seconds it took."""
    started = time.perf_counter()
    try:
        verifier.verify(verifier.prepare(detached_jws(BODY, KEY, kid)), BODY)
        answer = "ok"
    except EarlyAnswer as refusal:
        answer = f"{refusal.status} {refusal.reason}"
    return answer, round(time.perf_counter() - started, 3)


def main() -> None:
    rows: list[list[Any]] = []
    with JwksStandIn() as jwks:
        jwks.keys[KID] = KEY

        def row(case: str, verifier: JwsVerifier, kid: str = KID) -> None:
            before = jwks.fetches
            answer, seconds = checked(verifier, kid)
            rows.append([case, answer, seconds, jwks.fetches - before])

        known = JwsVerifier(jwks.url, 3600, 30, 5)
        row("first request (fetches the set)", known)
        row("**floor**: the key cached", known)
        jwks.answer = Answer(200, huge_key_set())
        row("10 MB key set, length declared", JwsVerifier(jwks.url, 3600, 30, 5))
        jwks.answer = Answer(200, huge_key_set(), declared=False)
        row("10 MB key set, no length", JwsVerifier(jwks.url, 3600, 30, 5))
        jwks.answer = None
        jwks.hold()
        held = JwsVerifier(jwks.url, 3600, 30, 20)
        row("JWKS holds its answer (timeout 20 s)", held)
        results: list[tuple[str, float]] = []
        before = jwks.fetches
        threads = [
            threading.Thread(target=lambda n=n: results.append(checked(held, f"kid-{n}")))
            for n in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        answers = ", ".join(sorted({answer for answer, _ in results}))
        slowest = max(seconds for _, seconds in results)
        rows.append(["20 unknown kids at once, held", answers, slowest, jwks.fetches - before])
        jwks.release()
    print(table(["case", "answer", "seconds (slowest)", "fetches"], rows))


if __name__ == "__main__":
    main()
