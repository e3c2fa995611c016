"""django-auth-ldap's settings from LDAP_* variables (documented in .env.example).

Called by settings.py only when LDAP_SERVER_URI is set, so a site without LDAP does not
need python-ldap (a C extension built against libldap) installed."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

GROUP_TYPES = {
    "groupOfNames": "GroupOfNamesType",
    "groupOfUniqueNames": "GroupOfUniqueNamesType",
    "posixGroup": "PosixGroupType",
    "nestedGroupOfNames": "NestedGroupOfNamesType",
    "activeDirectory": "NestedActiveDirectoryGroupType",
}
DEFAULT_GROUP_FILTERS = {
    "groupOfNames": "(objectClass=groupOfNames)",
    "groupOfUniqueNames": "(objectClass=groupOfUniqueNames)",
    "posixGroup": "(objectClass=posixGroup)",
    "nestedGroupOfNames": "(objectClass=groupOfNames)",
    "activeDirectory": "(objectClass=group)",
}
REQUIRE_CERT = {
    "demand": "OPT_X_TLS_DEMAND",
    "allow": "OPT_X_TLS_ALLOW",
    "never": "OPT_X_TLS_NEVER",
}


def ldap_settings(
    env: Callable[[str, str], str],
    envbool: Callable[[str, bool], bool],
    envint: Callable[[str, int], int],
) -> dict[str, object]:
    try:
        import ldap
        from django_auth_ldap import config
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"LDAP_SERVER_URI is set but python-ldap cannot be imported ({exc}): install "
            "the LDAP extra, `pip install 'evalserver[ldap]'` (it builds against libldap: "
            "apt-get install libldap-dev libsasl2-dev first)."
        ) from None

    user_base = env("LDAP_USER_SEARCH_BASE", "")
    dn_template = env("LDAP_USER_DN_TEMPLATE", "")
    if not user_base and not dn_template:
        raise ImproperlyConfigured(
            "LDAP_SERVER_URI is set: set LDAP_USER_SEARCH_BASE (search for the user, e.g. "
            "ou=people,dc=example,dc=org) or LDAP_USER_DN_TEMPLATE (bind directly, e.g. "
            "uid=%(user)s,ou=people,dc=example,dc=org)."
        )
    group_type_name = env("LDAP_GROUP_TYPE", "groupOfNames")
    if group_type_name not in GROUP_TYPES:
        raise ImproperlyConfigured(
            f"LDAP_GROUP_TYPE={group_type_name!r}: use one of {', '.join(GROUP_TYPES)}"
        )
    require_cert = env("LDAP_REQUIRE_CERT", "demand").lower()
    if require_cert not in REQUIRE_CERT:
        raise ImproperlyConfigured(
            f"LDAP_REQUIRE_CERT={require_cert!r}: use demand, allow or never"
        )

    options: dict[int, object] = {
        ldap.OPT_REFERRALS: 0,  # Active Directory's referrals would need another bind
        ldap.OPT_NETWORK_TIMEOUT: envint("LDAP_TIMEOUT_S", 10),
        ldap.OPT_TIMEOUT: envint("LDAP_TIMEOUT_S", 10),
        ldap.OPT_X_TLS_REQUIRE_CERT: getattr(ldap, REQUIRE_CERT[require_cert]),
    }
    ca_file = env("LDAP_CA_FILE", "")
    if ca_file:
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
    # libldap reads the TLS options into a new context only when asked, and last.
    options[ldap.OPT_X_TLS_NEWCTX] = 0

    out: dict[str, object] = {
        "AUTH_LDAP_SERVER_URI": env("LDAP_SERVER_URI", ""),
        "AUTH_LDAP_BIND_DN": env("LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": env("LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": envbool("LDAP_START_TLS", False),
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_USER_ATTR_MAP": {
            "first_name": env("LDAP_ATTR_FIRST_NAME", "givenName"),
            "last_name": env("LDAP_ATTR_LAST_NAME", "sn"),
            "email": env("LDAP_ATTR_EMAIL", "mail"),
        },
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,  # groups are read at every sign-in (roles follow them)
        "AUTH_LDAP_GROUP_TYPE": getattr(config, GROUP_TYPES[group_type_name])(),
    }
    if dn_template:
        out["AUTH_LDAP_USER_DN_TEMPLATE"] = dn_template
    else:
        out["AUTH_LDAP_USER_SEARCH"] = config.LDAPSearch(
            user_base, ldap.SCOPE_SUBTREE, env("LDAP_USER_FILTER", "(uid=%(user)s)")
        )
    group_base = env("LDAP_GROUP_SEARCH_BASE", "")
    if group_base:
        out["AUTH_LDAP_GROUP_SEARCH"] = config.LDAPSearch(
            group_base,
            ldap.SCOPE_SUBTREE,
            env("LDAP_GROUP_FILTER", DEFAULT_GROUP_FILTERS[group_type_name]),
        )
    return out
