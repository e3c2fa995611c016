# syntax=docker/dockerfile:1
# One image for the web app, the evaluation workers and the scheduler; docker-compose.yml
# picks the command. See docs/deployment.md.
#
#   docker build -t evalserver .
FROM python:3.11-slim-bookworm

# PYTHONPATH: the project runs from the source tree in /app. `pip install .` below installs
# the dependencies and the packages' Python modules, but pyproject.toml declares no
# package data yet, so the installed copy lacks the templates and static files;
# /app/frontend/templates etc. are the ones Django must find.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    EVALSERVER_VAR_DIR=/var/lib/evalserver \
    MEDIA_ROOT=/var/lib/evalserver/media \
    STATIC_ROOT=/app/staticfiles

# util-linux provides the evaluation sandbox's tools (workers/sandbox/runner.py): `unshare` gives
# each evaluate() child its own network and PID namespaces, `setpriv` drops it to an
# unprivileged uid. The build fails here rather than at the first evaluation if either
# is missing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends util-linux \
 && rm -rf /var/lib/apt/lists/* \
 && command -v unshare \
 && command -v setpriv

# The web app and the scheduler run as this user. The worker starts as root in the
# container so it can put evaluate() in namespaces and drop it to uid 65534 (see
# docker-compose.yml). Fixed ids keep the files on the media volume stable across
# rebuilds and hosts.
RUN groupadd --system --gid 10001 evalserver \
 && useradd --system --uid 10001 --gid evalserver --no-create-home \
        --home-dir /var/lib/evalserver --shell /usr/sbin/nologin evalserver \
 && install -d -o evalserver -g evalserver -m 0755 /var/lib/evalserver /var/lib/evalserver/media

WORKDIR /app

# Dependencies in their own layer, so a code change does not reinstall pandas and
# scikit-learn: with only pyproject.toml here, `pip install .` installs what the project
# depends on and none of its own packages. Then the servers' imports are tried with
# exactly those dependencies (a development venv hides gaps: pytest brings `packaging`,
# which Celery's Redis transport needs), so a gap fails the build, not every start.
# The LDAP extra's python-ldap builds against libldap: its headers and a compiler are
# installed for the build and removed after (the runtime libraries stay).
COPY pyproject.toml ./
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libldap-dev libsasl2-dev \
        libldap-2.5-0 libsasl2-2 \
 && pip install '.[ldap]' \
 && python -c "import celery.bin.celery, gunicorn.app.wsgiapp, kombu.transport.redis, psycopg2, ldap, django_auth_ldap, mozilla_django_oidc" \
 && pip uninstall -y evalserver \
 && apt-get purge -y gcc libc6-dev libldap-dev libsasl2-dev \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* build ./*.egg-info \
 && python -c "import ldap"

# .dockerignore keeps the venv, var/, tests and local secrets out of the context. The code
# stays root-owned and read-only for the app user and for the evaluation sandbox's uid,
# whatever the umask of the checkout it came from.
COPY . .
RUN chmod -R a+rX,go-w /app \
 && pip install --no-deps . \
 && rm -rf build ./*.egg-info \
 && python -m compileall -q evalserver challenges workers frontend starters

# Settings refuse to start with DEBUG off and no SECRET_KEY, so collecting static files
# gets a throwaway key that is never used at run time. Importing settings creates
# folders under EVALSERVER_VAR_DIR as root; hand them back to the app user.
RUN SECRET_KEY=collectstatic-at-build-time-only-never-used-to-sign-anything DEBUG=false \
        python manage.py collectstatic --noinput \
 && chown -R evalserver:evalserver /var/lib/evalserver

USER evalserver
EXPOSE 8000
CMD ["gunicorn", "evalserver.wsgi", "--bind", "0.0.0.0:8000", "--timeout", "600", "--access-logfile", "-"]
