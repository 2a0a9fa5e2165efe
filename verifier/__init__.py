"""pg-backup-verifier: prove every night that a PostgreSQL backup restores and holds what production held."""

__version__ = "0.1.0"
