"""Store-and-forward of reports: a durable SQLite queue and its delivery loop."""
