"""Entry points and dev/ops tooling: the ``ordersaga`` CLI, dev stack, bench, audit, seed."""
