"""Signing in with the organisation's identity provider.

- `ldap_config`: AUTH_LDAP_* settings built from LDAP_* variables (settings.py calls it).
- `oidc`, `ldap`, `local`: the authentication backends (library glue only).
- `accounts`: the users those backends sign in (first sign-in creates one) and the
  break-glass admin; `roles`: groups at the provider to roles here, for both backends.

Nothing here imports models at package level: settings.py imports `ldap_config`.
"""
