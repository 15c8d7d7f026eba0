"""Datastores configured for the SPHEREx dimension universe."""

from .file_datastore import *
