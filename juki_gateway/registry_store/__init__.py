"""The registry store: resident files, queues, audit log and retention over SQLAlchemy."""
