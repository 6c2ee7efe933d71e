"""The cluster: nodes with N-module, D-module and M-host, the replicated database (volume location
database, volume table), the CF protocol (LPC within a node, RPC across nodes) and vservers."""
