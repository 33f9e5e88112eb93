"""``python -m opsauto``: the same as the ``opsauto`` console script."""

from opsauto.cli import main

raise SystemExit(main())
