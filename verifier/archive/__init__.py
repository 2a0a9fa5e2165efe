"""The stored dump files themselves: their checksums against the manifest and their zstd compression."""
