"""SaaSquatch REST API: the call shapes (`calls`), one client (`client`), a dry-run stand-in with
the same `send` (`dry_run`), and the ways a call fails (`errors`).

Import the submodule you need: the pure mapper imports `saasquatch.calls` alone, without the
HTTP client behind it.
"""
