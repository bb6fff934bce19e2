"""Test helper: one HogQL answer decoded whole into one Arrow page (the connector decodes answers slice by slice,
posthog_source.hogql.answer_pages; tests compare whole pages)."""

from __future__ import annotations

import pyarrow as pa

from posthog_source.hogql import HogQLTable, Page, answer_pages, decode
from posthog_source.projects import Project


def parse_page(content: bytes, table: HogQLTable, project: Project, limit: int) -> Page:
    """One HogQL answer -> one Arrow page converted by the answer's column types, and where to continue."""
    pages = list(answer_pages(decode(content), table, project, limit))
    tables = [page.table for page in pages if page.table is not None]
    if not pages:
        return Page(None, False, None)
    merged = pa.concat_tables(tables) if len(tables) > 1 else tables[0] if tables else None
    return Page(merged, pages[-1].more, pages[-1].last_key, sum(page.answered for page in pages))
