"""Consistent snapshots of an expandable volume: fences, coordinator, snapshot table, holds,
access."""
