"""Writes of the health-check area. Each public function owns its
transaction and, where a person or the system changes something that
matters, its audit entry.

Split by concern; every name stays importable from `healthchecks.services`:

- config      Configuring checks and maintenance windows (audited, secrets masked).
- scheduling  Claiming due checks for the probe workers (leases, no check run twice).
- results     Recording probe results: state decisions, state changes, their audit and maintenance silencing.
- retention   Hourly rollups and pruning of raw results.
"""

from .config import (
    CHECK_AUDIT_FIELDS,
    _mask,
    check_create,
    check_update,
    maintenance_window_create,
    maintenance_window_end,
    mask_config,
)
from .results import AUDIT_EACH_MAX, decide_state, record_results, run_check_now, run_checks
from .retention import prune_results, rollup_results
from .scheduling import Claim, claim_due_checks

__all__ = [
    "AUDIT_EACH_MAX",
    "CHECK_AUDIT_FIELDS",
    "Claim",
    "_mask",
    "check_create",
    "check_update",
    "claim_due_checks",
    "decide_state",
    "maintenance_window_create",
    "maintenance_window_end",
    "mask_config",
    "prune_results",
    "record_results",
    "rollup_results",
    "run_check_now",
    "run_checks",
]
