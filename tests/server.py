"""The test suite starts servers with the launcher the package ships (also used by the pytest plugin)."""

from emulator.testing import RunningServer, free_port, postgres_database, run_server

__all__ = ["RunningServer", "free_port", "postgres_database", "run_server"]
