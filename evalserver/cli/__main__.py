"""`python -m evalserver.cli`: the same as `evalserver-cli`."""

from evalserver.cli import main

raise SystemExit(main())
