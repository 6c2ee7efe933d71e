"""Write-anywhere volumes: inodes, files, directories, consistency points, copy-on-write snapshots,
block-level diff and apply (seed: volume, write-anywhere file system, snapshot).

Modules, bottom up: :mod:`.layout` (on-block formats), :mod:`.tree` (a file's pointer tree and the
block allocator), :mod:`.volume` (the file system, consistency points, snapshots: :class:`Volume`),
:mod:`.diff` (snapshot diffs and their apply on another volume), :mod:`.changes` (which files
changed between two trees, from metadata only), :mod:`.volume_simulator` (the ``xvol volume``
teaching simulator)."""
