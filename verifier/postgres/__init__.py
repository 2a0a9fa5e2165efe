"""Everything that speaks PostgreSQL: connections, snapshot and counts, schema fingerprint,
pg_dump/pg_restore argv builders, binary discovery and the temporary cluster."""
