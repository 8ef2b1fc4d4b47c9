"""The ordersaga worker: builds the activities once and runs the Temporal worker."""
