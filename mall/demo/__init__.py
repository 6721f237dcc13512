"""Demo county for newcomers and integrators."""
