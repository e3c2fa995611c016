"""Code that runs inside the sandbox, by path, with `workers/harness` alone on sys.path."""
