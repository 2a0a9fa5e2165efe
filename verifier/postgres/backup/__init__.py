"""Taking a backup: pg_dump in the snapshot, its locks, its stream into the repository, its errors."""
