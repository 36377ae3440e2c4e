"""Fixtures every test directory may use."""

pytest_plugins = ["postgres_server", "user_modules"]
