"""Real identity servers for the tests, each its own process on a free 127.0.0.1 port:
npm's `oidc-provider` run by the machine's Node.js, and Debian's slapd."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests

from tests.services import spare_port

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "evalserver-tests"
CLIENT_SECRET = "not-a-secret-only-for-tests"  # noqa: S105
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "admin-pw-for-tests"  # noqa: S105


def node_ready() -> str:
    """Why the provider cannot start here, or "" when it can."""
    if not shutil.which("node"):
        return "node (apt-get install nodejs)"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider (cd {PROVIDER_DIR} && npm ci)"
    return ""


@dataclass
class OIDCProvider:
    issuer: str
    proc: subprocess.Popen
    users_file: Path
    log_path: Path

    def set_users(self, users: dict[str, dict]) -> None:
        """Who exists at the provider and their claims; read at every sign-in."""
        self.users_file.write_text(json.dumps(users))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_oidc_provider(
    workdir: Path, *, redirect_uris: list[str], users: dict[str, dict], **env: str
) -> OIDCProvider:
    workdir.mkdir(parents=True, exist_ok=True)
    users_file = workdir / "users.json"
    users_file.write_text(json.dumps(users))
    log_path = workdir / "provider.log"
    environment = {
        **os.environ,
        "PORT": "0",
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URIS": ",".join(redirect_uris),
        "USERS_FILE": str(users_file),
        **env,
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["node", str(PROVIDER_DIR / "provider.mjs")],
            cwd=PROVIDER_DIR,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    provider = OIDCProvider("", proc, users_file, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"^listening (\S+)$", provider.log(), re.M)
        if found:
            provider.issuer = found.group(1)
            return provider
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    provider.stop()
    raise RuntimeError(f"oidc-provider did not start:\n{provider.log()[-3000:]}")


def provider_login(authorize_url: str, login: str, stop_at: str) -> str:
    """Sign in as `login` on the provider's own login page, as a browser would (its
    cookies in a session of its own), and return the redirect back to `stop_at`."""
    browser = requests.Session()
    url = authorize_url
    for _ in range(10):
        answer = browser.get(url, allow_redirects=False, timeout=10)
        if answer.status_code in (302, 303):
            url = urljoin(url, answer.headers["Location"])
            if url.startswith(stop_at):
                return url
            continue
        form = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
        assert form, f"no login form at {url}: {answer.status_code} {answer.text[:500]}"
        answer = browser.post(
            urljoin(url, form.group(1)),
            data={"prompt": "login", "login": login, "password": "any"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code in (302, 303), answer.text[:500]
        url = urljoin(url, answer.headers["Location"])
        if url.startswith(stop_at):
            return url
    raise AssertionError(f"the provider never sent the browser back to {stop_at}")


# ------------------------------------------------------------------ slapd


@dataclass
class Slapd:
    uri: str
    proc: subprocess.Popen
    workdir: Path
    people: str = f"ou=people,{SUFFIX}"
    groups: str = f"ou=groups,{SUFFIX}"
    log_path: Path = field(default=Path())

    def connection(self):
        import ldap

        conn = ldap.initialize(self.uri)
        conn.simple_bind_s(ROOT_DN, ROOT_PW)
        return conn

    def add_user(self, uid: str, password: str, *, mail: str, given: str = "", sn: str = "") -> str:
        dn = f"uid={uid},{self.people}"
        attrs = [
            ("objectClass", [b"inetOrgPerson"]),
            ("uid", [uid.encode()]),
            ("cn", [(given or uid).encode()]),
            ("sn", [(sn or uid).encode()]),
            ("mail", [mail.encode()]),
            ("userPassword", [password.encode()]),
        ]
        if given:
            attrs.append(("givenName", [given.encode()]))
        self.connection().add_s(dn, attrs)
        return dn

    def set_group(self, cn: str, member_dns: list[str]) -> None:
        """Create or replace the group `cn` with these members (groupOfNames needs one:
        an empty group holds the root DN, which no one signs in as)."""
        import ldap

        conn = self.connection()
        dn = f"cn={cn},{self.groups}"
        members = [m.encode() for m in member_dns] or [ROOT_DN.encode()]
        try:
            conn.modify_s(dn, [(ldap.MOD_REPLACE, "member", members)])
        except ldap.NO_SUCH_OBJECT:
            conn.add_s(
                dn,
                [("objectClass", [b"groupOfNames"]), ("cn", [cn.encode()]), ("member", members)],
            )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
{tls}
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
"""


def start_slapd(workdir: Path, *, tls: dict[str, Path] | None = None) -> Slapd:
    """slapd with a configuration and database of its own under `workdir`, seeded with
    the people and groups branches. `tls`: {"cert", "key", "ca"} files for StartTLS."""
    import ldap

    (workdir / "db").mkdir(parents=True, exist_ok=True)
    tls_lines = ""
    if tls:
        tls_lines = (
            f"TLSCACertificateFile {tls['ca']}\n"
            f"TLSCertificateFile {tls['cert']}\n"
            f"TLSCertificateKeyFile {tls['key']}\n"
        )
    conf = workdir / "slapd.conf"
    conf.write_text(
        SLAPD_CONF.format(
            dir=workdir, tls=tls_lines, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=ROOT_PW
        )
    )
    port = spare_port()
    uri = f"ldap://127.0.0.1:{port}/"
    log_path = workdir / "slapd.log"
    with log_path.open("wb") as log:
        # -d 0: stay in the foreground (the test owns the process) and log little.
        proc = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", uri, "-d", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Slapd(uri, proc, workdir, log_path=log_path)
    deadline = time.monotonic() + 20
    while True:
        try:
            conn = server.connection()
            break
        except ldap.SERVER_DOWN:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"slapd did not start:\n{log_path.read_text()[-3000:]}"
                ) from None
            time.sleep(0.1)
    conn.add_s(
        SUFFIX,
        [
            ("objectClass", [b"dcObject", b"organization"]),
            ("dc", [b"example"]),
            ("o", [b"Example"]),
        ],
    )
    for ou in ("people", "groups"):
        conn.add_s(
            f"ou={ou},{SUFFIX}", [("objectClass", [b"organizationalUnit"]), ("ou", [ou.encode()])]
        )
    return server
