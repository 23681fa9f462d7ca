"""Audit devices (file, syslog, socket) behind a broker that fails closed."""

from strongroom.audit.broker import DeviceBroker
from strongroom.audit.device import AuditDevice, lenient
from strongroom.audit.file import FileDevice
from strongroom.audit.socket import SocketDevice
from strongroom.audit.syslog import SyslogDevice, syslog_factory

__all__ = ["DeviceBroker", "AuditDevice", "FileDevice", "SocketDevice", "SyslogDevice",
           "lenient", "syslog_factory"]
