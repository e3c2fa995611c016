"""Loaded with `-p tests.pytest_env` before Django's settings: test-run defaults.

Production settings (DEBUG off) with a throwaway key and plain HTTP, so tests exercise
what operators run. Values already in the environment (CI's DATABASE_URL) win.
"""

import os

os.environ.setdefault("SECRET_KEY", "insecure-key-for-the-test-suite-only-0123456789abcdef")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
