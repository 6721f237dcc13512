"""Admin web pages (管理后台): server-rendered Jinja pages over the same services as the API."""
