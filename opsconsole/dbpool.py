"""The psycopg connection pool's options, read from the environment by
settings.py (docs/operations.md "Database connections").

A bounded pool per process: PostgreSQL sees at most processes x
DATABASE_POOL_MAX_SIZE connections. A request that waits
DATABASE_POOL_TIMEOUT seconds for one is answered 503 + Retry-After
(opsconsole.unavailable). Django adds `check=ConnectionPool.check_connection`,
so connections broken by a PostgreSQL restart are replaced, not handed out.
No Django imports: settings.py imports this.
"""


def pool_options(env) -> dict:
    return {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=4),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
        "max_idle": 300,
    }
