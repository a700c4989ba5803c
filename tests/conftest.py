"""Shared pytest configuration: loads the fixture plugins of each part of the project."""

pytest_plugins = ("tests.store_fixtures",)
