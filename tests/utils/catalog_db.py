"""Fixtures running every catalog test on both databases: embedded SQLite and PostgreSQL.

``catalog_backend`` is parametrised (``sqlite``, ``postgresql``, grouped by module); ``catalog_url``
is a fresh empty database of that backend for each test; ``catalog_databases.url(backend)`` makes
more (a reference catalog, a module-wide one). PostgreSQL is one throwaway server for the session
(:class:`tests.utils.postgres.PostgresServer`), started on first use, a new database per URL.

The PostgreSQL variants skip only when the ``pgserver``/``psycopg`` packages are missing (the skip
says what to install); a server that is installed but cannot start fails them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.postgres import PostgresServer, PostgresUnavailable, postgres_bin

__all__ = ["BACKENDS", "CatalogDatabases", "catalog_backend", "catalog_databases", "catalog_url"]

BACKENDS = ("sqlite", "postgresql")


class CatalogDatabases:
    """Makes empty catalog databases; owns the session's PostgreSQL server."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._numbers = itertools.count(1)
        self._server: PostgresServer | None = None

    @property
    def server(self) -> PostgresServer:
        """The session's PostgreSQL server, started on first use.

        Raises:
            pytest.skip.Exception: pgserver or psycopg is not installed.
        """
        if self._server is None:
            try:
                bin_dir = postgres_bin()
            except PostgresUnavailable as exc:
                pytest.skip(str(exc))
            server = PostgresServer(bin_dir)
            server.start()  # NOTE: a failure here is an error, never a skip
            self._server = server
        return self._server

    def url(self, backend: str) -> str:
        """A new empty database of ``backend`` (``sqlite`` or ``postgresql``)."""
        number = next(self._numbers)
        if backend == "sqlite":
            return f"sqlite:///{self.root / f'catalog-{number}.sqlite'}"
        if backend == "postgresql":
            return self.server.create_database(f"catalog_{number}")
        raise ValueError(f"unknown catalog backend {backend!r}")

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


@pytest.fixture(scope="session")
def catalog_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogDatabases]:
    databases = CatalogDatabases(tmp_path_factory.mktemp("catalogs"))
    yield databases
    databases.close()


@pytest.fixture(scope="module", params=BACKENDS)
def catalog_backend(request: pytest.FixtureRequest) -> str:
    """The catalog database under test: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture
def catalog_url(catalog_backend: str, catalog_databases: CatalogDatabases) -> str:
    """A fresh, empty catalog database for this test."""
    return catalog_databases.url(catalog_backend)
