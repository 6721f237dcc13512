"""Credit Mall: the core domain (one package per domain), its channels (mall.api, mall.farmer,
admin, pos_adapter) over the shared HTTP plumbing (mall.http), and the composition root
(mall.web.app.create_app). docs/architecture.md maps the layers."""
