"""Restoring a backup into a sandbox database: pg_restore or guarded psql, its errors and progress."""
