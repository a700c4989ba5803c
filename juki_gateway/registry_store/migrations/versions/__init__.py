"""Alembic revision scripts of the registry store, oldest first."""
