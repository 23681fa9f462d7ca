"""HTTP edge: the only layer that knows methods, headers and status codes."""
