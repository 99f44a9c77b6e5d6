"""The Segment -> SaaSquatch direction (the hosted product's Segment *Subscription*).

`ingest` (public) takes Segment's requests in every dialect Segment sends and puts each message
on Pub/Sub; `deliver` (private, Pub/Sub push) maps a message (`mapper`) and runs the plan against
SaaSquatch behind the delivery ledger. Each target's handler and settings are modules of their
own (`ingest`, `ingest_settings`, `deliver`, `deliver_settings`), so a service imports only what
it serves.
"""
