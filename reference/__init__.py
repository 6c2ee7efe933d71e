"""The reference implementation of the expandable volume, layer by layer, bottom up.

``storage`` (disks, RAID groups, aggregates) -> ``volume`` (write-anywhere file system with
snapshots) -> ``repository`` (data constituents, object location store, namespace, handles) ->
``cluster`` -> ``access`` -> ``snapshots`` -> ``mirror``. Each layer uses only the layers below it
and the shared vocabulary in :mod:`xvol.vocabulary`; it never imports :mod:`xvol.model`.
"""
