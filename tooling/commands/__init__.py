"""The ``ordersaga`` subcommands, by area; ``tooling.cli`` parses and dispatches."""
