"""Auth methods (Vault's ``builtin/credential``): approle, userpass, cert, ldap.

Each is a package whose factory takes the mount's ``MountContext`` and returns a
``LogicalBackend``; ``strongroom.registry.AUTH_METHODS`` names them. A login path is
one of the backend's ``special_paths.unauthenticated`` paths and answers
``Response(auth=Auth(...))``; the core's login stage issues the token, maps the
``Auth.alias`` to an identity entity and registers the token's lease.
"""
