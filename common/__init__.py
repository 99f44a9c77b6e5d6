"""What both sides share: the outcome vocabulary, HTTP refusals and the request wrapper, settings,
secrets, logs and text cuts. It imports nothing of theirs."""
