"""What both public receivers (ingest, saasquatch_webhook) share: the receiver core (method,
credentials before the body, a bounded read, then the direction's own checks), and
publish-then-answer (200 only once Pub/Sub confirmed every message)."""
