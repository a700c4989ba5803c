"""Alembic migrations of the registry store, shipped inside the package (see ``..migrate``)."""
