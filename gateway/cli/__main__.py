"""`python -m gateway.cli` runs the same entry point as the `supportgate` script."""

from gateway.cli.main import main

raise SystemExit(main())
