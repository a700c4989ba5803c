"""The registry store: resident files, durable queues, audit log and retention over SQLAlchemy.

Modules (see docs/store.md):

* :mod:`.engine` — ``config_store_url``, ``create_store_engine`` (SQLite WAL/FULL or PostgreSQL);
* :mod:`.models` — the typed SQLAlchemy models; :mod:`.migrate` — ``upgrade(url)``/``downgrade(url)``;
* :mod:`.residents` — 本人確認情報 current/history, 消除者, 個人番号 (R10), 送付先情報;
* :mod:`.queues` — outbox (``enqueue``, ``claim_due``, ``mark_sent``) and exactly-once inbox;
* :mod:`.audit` — hash-chained audit log (R6); :mod:`.retention` — purges (R9, R5);
* :mod:`.asyncstore` — ``AsyncStore`` (thread pool) and ``GroupCommitter`` (ack after commit);
* :mod:`.backup` — online SQLite backup and restore.

Store functions take a ``sqlalchemy.Connection`` inside a transaction the caller owns and are
blocking: the daemon runs them through :class:`.asyncstore.AsyncStore`.
"""
