"""The content repository: data constituents, object location store, namespace with redirector
files, object handles, placement and migration, and the expandable volume that joins them."""
