"""``strongroom status``: seal and HA state, with Vault's exit codes (0/2/1)."""

from __future__ import annotations

from strongroom.cli.client import ApiClient, ApiError, ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.output import Row

# Go's zero time.Time, which Vault reports as active_time on non-active nodes.
_ZERO_TIME = "0001-01-01T00:00:00Z"
# sys/leader fields Vault copies into the status output, omitted when empty.
_LEADER_FIELDS = (
    "is_self", "active_time", "leader_address", "leader_cluster_address",
    "performance_standby", "performance_standby_last_remote_wal", "last_wal",
    "raft_committed_index", "raft_applied_index",
)


def fetch_leader(client: ApiClient) -> JsonObject:
    """Return ``sys/leader``, masking the "sealed" error the way Vault does.

    A server that answers ``sys/leader`` with "Vault is sealed" is an HA node
    that cannot name its leader while sealed, so it is reported as HA-enabled.

    Raises:
        ClientError: Any other failure.
    """
    try:
        return dict(client.leader())
    except ApiError as exc:
        if any("Vault is sealed" in e for e in exc.errors):
            return {"ha_enabled": True}
        raise


def merge_status(seal: JsonObject, leader: JsonObject) -> JsonObject:
    """Build the object ``status -format=json`` prints: seal status plus HA fields."""
    merged: JsonObject = dict(seal)
    merged.setdefault("build_date", "")
    merged["ha_enabled"] = bool(leader.get("ha_enabled"))
    for key in _LEADER_FIELDS:
        value = leader.get(key)
        if value and value != _ZERO_TIME:
            merged[key] = value
    return merged


def status_rows(status: JsonObject) -> list[Row]:
    """Lay out a merged status object as ``vault status`` does."""
    prefix = "Recovery " if status.get("recovery_seal") else ""
    sealed = bool(status.get("sealed"))
    rows: list[Row] = [
        (f"{prefix}Seal Type", status.get("type", "")),
        ("Initialized", bool(status.get("initialized"))),
        ("Sealed", sealed),
        (f"Total {prefix}Shares", status.get("n", 0)),
        ("Threshold", status.get("t", 0)),
    ]
    if sealed:
        rows.append(("Unseal Progress", f"{status.get('progress', 0)}/{status.get('t', 0)}"))
        rows.append(("Unseal Nonce", status.get("nonce", "")))
    if status.get("migration"):
        rows.append(("Seal Migration in Progress", True))
    rows.append(("Version", status.get("version", "")))
    # OpenBao reports commit_date instead of build_date; show whichever is set.
    if not status.get("build_date") and status.get("commit_date"):
        rows.append(("Commit Date", status["commit_date"]))
    else:
        rows.append(("Build Date", status.get("build_date", "")))
    if "storage_type" in status:
        rows.append(("Storage Type", status["storage_type"]))
    if status.get("cluster_name") and status.get("cluster_id"):
        rows.append(("Cluster Name", status["cluster_name"]))
        rows.append(("Cluster ID", status["cluster_id"]))
    rows.append(("HA Enabled", bool(status.get("ha_enabled"))))
    if status.get("ha_enabled") and not sealed:
        rows.extend(_ha_rows(status))
    if status.get("last_wal"):
        rows.append(("Last WAL", status["last_wal"]))
    return rows


def _ha_rows(status: JsonObject) -> list[Row]:
    rows: list[Row] = [("HA Cluster", status.get("leader_cluster_address", ""))]
    if status.get("is_self"):
        rows.append(("HA Mode", "active"))
        if status.get("active_time"):
            rows.append(("Active Since", status["active_time"]))
    else:
        rows.append(("HA Mode", "standby"))
        rows.append(("Active Node Address", status.get("leader_address") or "<none>"))
    if status.get("performance_standby"):
        rows.append(("Performance Standby Node", True))
        rows.append(("Performance Standby Last Remote WAL",
                     status.get("performance_standby_last_remote_wal", 0)))
    if status.get("raft_committed_index"):
        rows.append(("Raft Committed Index", status["raft_committed_index"]))
        rows.append(("Raft Applied Index", status.get("raft_applied_index", 0)))
    return rows


def print_seal_status(ctx: Context, seal: JsonObject) -> int:
    """Print a seal status (from ``sys/seal-status`` or ``sys/unseal``) with HA info.

    Shared by ``status`` and ``operator unseal``.

    Returns:
        0 on success, 1 if ``sys/leader`` failed or ``-field`` names no field.
    """
    try:
        leader = fetch_leader(ctx.client())
    except ClientError as exc:
        return ctx.fail("Error checking leader status", exc, code=1)
    merged = merge_status(seal, leader)
    return ctx.emit(merged, status_rows(merged), what="seal status")


def run_status(ctx: Context) -> int:
    """Print seal status; exit 0 unsealed, 2 sealed, 1 on error."""
    ctx.expect_args(0, 0)
    try:
        seal = ctx.client().seal_status()
    except ClientError as exc:
        # Exit code 2 already means "sealed" here, so errors use 1.
        return ctx.fail("Error checking seal status", exc, code=1)
    code = print_seal_status(ctx, seal)
    return 2 if seal.get("sealed") else code


_HELP = """
Usage: strongroom status [options]

  Prints the current state of the server: whether it is initialized and
  sealed, the unseal progress and whether HA mode is enabled. It works
  whether or not the server is sealed, and needs no token.

  The exit code reflects the seal status:

      - 0 - unsealed
      - 1 - error
      - 2 - sealed
"""

COMMANDS: tuple[Command, ...] = (
    Command("status", "Print seal and HA status", _HELP, run_status),
)
