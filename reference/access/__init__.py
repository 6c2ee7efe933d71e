"""The presentation layer: NAS-style POSIX API and HTTP web service (named and raw
object access)."""
