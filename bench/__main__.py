"""`python -m bench`: see bench/__init__.py for what each figure means."""

from bench.run import main

raise SystemExit(main())
