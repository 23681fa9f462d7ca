"""The authenticated ``sys/`` endpoints, one module per group."""
