"""The staff JSON API (/api/v1/admin/..., /api/v1/auth, /api/v1/upstream, the public keys and
the probes): one subpackage per domain, each views (translate, call one service) and schemas."""
