"""The request core: seal state, tokens, policies, routing to mounts."""
