"""Helpers the tests import (tests/ is on pytest's pythonpath): `from helpers.cli import ...`."""
