"""The backup directory: backups and manifests, the lock, the run history, retention."""
