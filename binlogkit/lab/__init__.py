"""Real-server harness: private MariaDB/MySQL instances and the MySQL sid root."""

from binlogkit.lab.servers import (
    Flavor,
    LabError,
    Server,
    default_options,
    get_server,
    lab_home,
    list_servers,
    start_server,
    unavailable_reason,
)
from binlogkit.lab.sid import SidPath, host_path, run_in_sid, sid_path, sid_root

__all__ = [
    "Flavor",
    "LabError",
    "Server",
    "SidPath",
    "default_options",
    "get_server",
    "host_path",
    "lab_home",
    "list_servers",
    "run_in_sid",
    "sid_path",
    "sid_root",
    "start_server",
    "unavailable_reason",
]
