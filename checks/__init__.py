"""The check catalogue: one module per question, each exposing `check(context)`.

`BUILTIN` names every built-in check and where it lives (module:function in this package): the registry
(`verifier.check_registry`) loads them from here, so a check added to this list works without reinstalling
the package. Entry points (`pg_backup_verifier.checks`) add other packages' checks.
"""

BUILTIN: dict[str, str] = {
    "backup_age": "backup_age:check",
    "backup_count": "backup_count:check",
    "dump": "dump:check",
    "archive": "archive:check",
    "restore": "restore:check",
    "row_counts": "row_counts:check",
    "schema": "schema:check",
    "drift": "drift:check",
    "size_trend": "size_trend:check",
    "duration_trend": "duration_trend:check",
    "row_trend": "row_trend:check",
    "contents": "contents:check",
    "sequences": "sequences:check",
    "table_settings": "table_settings:check",
    "large_objects": "objects:large_objects",
    "materialized_views": "objects:materialized_views",
    "constraints": "objects:constraints",
    "database_properties": "database:database_properties",
    "replication": "database:replication",
    "assertions": "assertions:check",
    "retention": "retention:check",
    "recovery": "recovery:check",
    "physical": "physical:proof",
    "amcheck": "physical:amcheck",
    "collations": "physical:collations",
}
