"""What both push consumers (deliver, forward) share: the OIDC check, the envelope, the neutral
`Result`, the one table that says what a destination's answer means (retry or dead letter),
settling dead letters, the push answer and the log line."""
