"""Physical backups (pgBackRest first) restored to a known instant in a sandbox, and what only a physical
copy can have wrong (issue 24).

`engine` is the small interface a backup tool implements (`pgbackrest` the first); `wal` names WAL
segments; `restored` starts a restored data directory as the sandbox, its configuration replaced (it is
untrusted input) and recovery checked; `amcheck` runs pg_amcheck on it; `instant_proof` is the one entry
point: `take_instant` (production's side) and `restore_to_instant` (the restored, promoted copy).
"""
