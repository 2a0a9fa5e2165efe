"""Off-site copies: encrypted with GPG, uploaded to S3 or rsync-over-ssh targets, read back, pruned, drilled."""
