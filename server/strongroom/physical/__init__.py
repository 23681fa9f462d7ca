"""Storage backends: everything below the barrier sees only opaque bytes."""
