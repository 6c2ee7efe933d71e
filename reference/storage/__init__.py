"""Block storage: disks, RAID groups and aggregates (seed: storage devices, RAID groups,
aggregates and the RAID system that maps logical block numbers to disks)."""
