"""Write-anywhere volumes: inodes, files, directories, consistency points, copy-on-write snapshots,
block-level diff and apply (seed: volume, write-anywhere file system, snapshot)."""
