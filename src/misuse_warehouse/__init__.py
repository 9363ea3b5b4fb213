"""Misuse Warehouse: feeds in, quality gates, a star schema and KPIs out.

Importing the package makes what this process writes private to its user (files 0600, folders
0700; `settings.private_umask`): the archive, quarantine, reports, GX results and task logs under
the home hold initials and dates of birth or say where they are, and every entry point (CLI, each
Airflow task process, Celery workers, tests) imports the package before it writes anything.
"""

from misuse_warehouse import settings as _settings

__version__ = "0.1.0"

_settings.private_umask()
