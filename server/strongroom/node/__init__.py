"""Node-level state shared by every worker process: the seal and (later) the HA lock."""
