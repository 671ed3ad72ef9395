"""The archiver: JetStream `AUCTION` into PostgreSQL, each event stored once, and bid history from there.

A durable pull consumer takes the events in batches; a batch is written in one transaction whose inserts
skip rows whose event id is already stored (`ON CONFLICT DO NOTHING`), and acknowledged only after the
commit. So a crash before the ack redelivers events that are then skipped, and a crash before the commit
redelivers events that were never stored: in effect each event is stored exactly once. A second durable
consumer does the same for `AUCTION_AUDIT`, the hidden maximums' audit records (never public), into
`maximum_audit`.

Errors (`archiver.errors`; `history_service` maps them to gRPC statuses in one place)::

    ArchiverError
    ├── ArchiveUnavailable     PostgreSQL unreachable, timed out or refused the transaction (UNAVAILABLE)
    ├── ItemNotFound           no such item in the archive (NOT_FOUND)
    ├── InvalidArgument        a request outside the contract (INVALID_ARGUMENT)
    └── MigrationError         the schema on disk and in the database disagree (the archiver won't start)
"""
