"""binlogkit: MySQL and MariaDB binary logs, read and written exactly."""

__version__ = "0.1.0"
