"""The staff JSON API of benefits."""
