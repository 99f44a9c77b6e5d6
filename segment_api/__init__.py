"""Segment's HTTP Tracking API: the `/v1/batch` endpoint the forward path sends to."""
