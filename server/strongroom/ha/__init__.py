"""High availability: the active/standby lock, advertisement, forwarding, fencing."""
