"""The environment variables through which `bounceback load` configures the Locust users.

Kept apart from `users` because importing Locust patches the process with gevent: the CLI names
these variables without importing Locust itself.
"""

LEDGER_ENV = "BOUNCEBACK_LOAD_LEDGER"
PATH_ENV = "BOUNCEBACK_LOAD_PATH"
BATCH_ENV = "BOUNCEBACK_LOAD_BATCH"
PER_SESSION_ENV = "BOUNCEBACK_LOAD_PER_SESSION"
