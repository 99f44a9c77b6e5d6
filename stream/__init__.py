"""The SaaSquatch -> Segment direction (the hosted product's Segment *Stream*).

`receive` (target `saasquatch_webhook`) checks a webhook's signature and puts it on Pub/Sub;
`forward` (target `forward`) maps a pushed webhook with the declared table (`table`, run by
`mapping.map_webhook`, pure), fits it to Segment's size limit (`mapping.fit`) and sends it to
Segment's `/v1/batch`. The mapping is re-exported
here for the preview and the tools; importing this package starts nothing.
"""

from .mapping import (
    DROPPED,
    INTEGRATIONS,
    LIBRARY,
    STREAMS,
    Forwarding,
    StreamOptions,
    check_event_names,
    fit,
    map_webhook,
    message_id,
)

__all__ = [
    "DROPPED",
    "INTEGRATIONS",
    "LIBRARY",
    "STREAMS",
    "Forwarding",
    "StreamOptions",
    "check_event_names",
    "fit",
    "map_webhook",
    "message_id",
]
