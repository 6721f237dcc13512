"""The provincial credit platform pushes households and ratings to us (upstream API)."""
