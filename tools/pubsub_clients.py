"""Pub/Sub clients for the tools that pull whole messages.

On the emulator (`PUBSUB_EMULATOR_HOST`) the client library opens a plain gRPC channel with
gRPC's default receive limit, 4 MB: a pull answer holding a bigger message (ingest takes bodies
up to 8 MB, Pub/Sub messages up to 10 MB) then fails with ResourceExhausted. Against Google the
library's own channel has no limit; this gives the emulator's channel none either.
"""

from __future__ import annotations

import os

import grpc
from google.cloud import pubsub_v1
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def subscriber_client() -> pubsub_v1.SubscriberClient:
    """A SubscriberClient that receives a pull answer of any size, on the emulator too."""
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return pubsub_v1.SubscriberClient()
    channel = grpc.insecure_channel(host, options=UNLIMITED)
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel, host=host))
