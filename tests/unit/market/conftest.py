"""The market fixtures live in tests/utils/market_fixtures.py, shared with the CLI tests."""

from tests.utils.market_fixtures import *  # noqa: F403
