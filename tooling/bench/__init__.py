"""``ordersaga bench``: the saga measured end to end beside its own ceilings."""
