"""Registry database classes configured by the SPHEREx seed configs."""

from .sqlite_database import *
