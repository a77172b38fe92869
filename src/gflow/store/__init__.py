"""SQLite persistence: the jobs and events tables, migrations, and every transaction."""

from gflow.store.db import JobFilter, Store, StoreError

__all__ = ["JobFilter", "Store", "StoreError"]
