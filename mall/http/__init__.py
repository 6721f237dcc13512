"""HTTP plumbing shared by the channels: request authentication, the API's schema base and
blueprint, Flask extensions of the web layer, rate limits. The domain never imports it."""
