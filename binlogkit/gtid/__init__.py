"""GTID set algebra (MySQL and MariaDB). Depends on nothing else in binlogkit."""
