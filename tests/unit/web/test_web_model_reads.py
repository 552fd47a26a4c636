"""The model page reads its model from the catalog once (counted at the database driver)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event


def test_model_page__one_request__reads_the_model_once(client, site):
    store = client.app.state.store
    reads: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM models LEFT OUTER JOIN metadata" in statement:
            reads.append(statement)

    event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        page = client.get(f"/models/{site['cancer']}")
        api = client.get(f"/api/models/{site['cancer']}")
    finally:
        event.remove(store.engine, "before_cursor_execute", on_execute)

    assert page.status_code == 200 and api.status_code == 200
    assert len(reads) == 2  # one per request
