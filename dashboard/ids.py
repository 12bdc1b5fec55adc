"""Dashboard layer: component IDs, one constant each, prefixed with the page that owns them."""

from __future__ import annotations

# -- shell (dashboard/app.py) ---------------------------------------------------------------
SHELL_ROOT = "shell-root"
SHELL_NAVBAR = "shell-navbar"
SHELL_FOOTER = "shell-footer"
#: Dash's own location component of the pages router (read by the shell's kiosk callback).
PAGES_LOCATION = "_pages_location"

# -- overview (dashboard/pages/overview.py) --------------------------------------------------
OVERVIEW_MATRIX = "overview-matrix"
OVERVIEW_BANNER = "overview-banner"
OVERVIEW_STATUS = "overview-status"
OVERVIEW_REFRESH = "overview-refresh"
OVERVIEW_ROTATE = "overview-rotate"
OVERVIEW_OPTIONS = "overview-options"

# -- run and run/subsystem summaries (dashboard/pages/run.py) --------------------------------
RUN_SUMMARY = "run-summary"
RUNSUB_TABLE = "runsub-table"

# -- message pages (dashboard/pages/notfound.py) ---------------------------------------------
MESSAGE_PAGE = "message-page"
