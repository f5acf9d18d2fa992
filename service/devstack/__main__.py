"""`python -m service.devstack [DIR]`: run the dev servers until Ctrl-C."""

from service.devstack.dev import main

raise SystemExit(main())
