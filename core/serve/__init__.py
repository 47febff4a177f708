"""The real-time scoring service's building blocks (the durable event log first)."""
