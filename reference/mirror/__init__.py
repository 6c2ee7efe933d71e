"""Disaster-recovery mirroring (seed: mirroring coordinator, source proxy, block replication
protocol). Modules, bottom up: :mod:`.link` (typed messages over a link interface: the simulated
inter-site link on SimPy time and a direct in-process link), :mod:`.replication` (the block
replication protocol for one volume: baseline and incremental transfers with checksums,
checkpoints and resume, progress and lag, replica verification), :mod:`.transport` (the same
messages as bytes over a TCP socket: a real transport for the link interface),
:mod:`.divergence` (what changed at one site since a snapshot, reading only what may differ),
:mod:`.site` (a site = a cluster; the source proxy; two sites joined by links),
:mod:`.relationships` (the relationship table, fields A-J, and the destination volume table
with the source-ID mapping),
:mod:`.coordinator` (the mirroring coordinator: initialize, update with resize and redirect,
in-place baseline, holds on the common base, failover, verify, lag, delete), :mod:`.resync`
(dry run, preserve, rollback, reverse, transfer back, forced baseline) and
:mod:`.demo` (``xvol demo``)."""
