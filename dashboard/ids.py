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

# -- run summary (dashboard/pages/run.py) ----------------------------------------------------
RUN_SUMMARY = "run-summary"
RUN_OUTLIERS = "run-outliers"

# -- run/subsystem outlier grid (dashboard/pages/subsystem.py) -------------------------------
RUNSUB_TABLE = "runsub-table"
RUNSUB_GRID = "runsub-grid"
RUNSUB_QUICK = "runsub-quick"
RUNSUB_STATUS = "runsub-status"
RUNSUB_COMPARATOR = "runsub-comparator"
RUNSUB_NAV = "runsub-nav"

# -- histogram drill-down (dashboard/pages/drilldown.py) -------------------------------------
DRILL_ROOT = "drill-root"
DRILL_CONTEXT = "drill-context"
DRILL_TABS = "drill-tabs"
DRILL_PANEL = "drill-panel"
DRILL_FIGURE = "drill-figure"
DRILL_REASON = "drill-reason"
DRILL_TREND = "drill-trend"
DRILL_VERDICT = "drill-verdict"
DRILL_VERDICT_MSG = "drill-verdict-msg"
#: pattern-matching type of the verdict buttons: ``{"type": DRILL_VERDICT_BTN, "verdict": key}``
DRILL_VERDICT_BTN = "drill-verdict-btn"
DRILL_USER = "drill-user"
DRILL_USER_STORE = "drill-user-store"
DRILL_NAV = "drill-nav"

# -- message pages (dashboard/pages/notfound.py) ---------------------------------------------
MESSAGE_PAGE = "message-page"

# -- who acts (dashboard/pages/identity.py; on the alerts and compare pages) ------------------
USER_NAME = "user-name"
#: dcc.Store(storage_type="local"): the typed name, remembered by the browser.
USER_STORE = "user-store"

# -- alerts (dashboard/pages/alerts.py) --------------------------------------------------------
ALERTS_LIST = "alerts-list"
ALERTS_MESSAGE = "alerts-message"
ALERTS_UNACKED = "alerts-unacked"
ALERTS_SUBSYSTEM = "alerts-subsystem"
#: Pattern-matching id type of the "Acknowledge" buttons: {"type": ALERTS_ACK, "id": alert id}.
ALERTS_ACK = "alerts-ack"
ALERTS_SILENCES = "alerts-silences"
#: Pattern-matching id type of the "Lift" buttons: {"type": ALERTS_LIFT, "id": silence id}.
ALERTS_LIFT = "alerts-lift"
SILENCE_SUBSYSTEM = "silence-subsystem"
SILENCE_PATTERN = "silence-pattern"
SILENCE_DURATION = "silence-duration"
SILENCE_UNTIL = "silence-until"
SILENCE_REASON = "silence-reason"
SILENCE_ADD = "silence-add"
ALERTS_AUDIT = "alerts-audit"

# -- ad-hoc comparison (dashboard/pages/compare.py) ----------------------------------------------
COMPARE_TOKEN = "compare-token"
COMPARE_DATASET = "compare-dataset"
COMPARE_SUBSYSTEM = "compare-subsystem"
COMPARE_RUN = "compare-run"
COMPARE_REFS = "compare-refs"
COMPARE_REFS_WHY = "compare-refs-why"
COMPARE_SUGGEST = "compare-suggest"
COMPARE_START = "compare-start"
COMPARE_CANCEL = "compare-cancel"
COMPARE_PROGRESS = "compare-progress"
COMPARE_PROGRESS_WRAP = "compare-progress-wrap"
COMPARE_MESSAGE = "compare-message"
#: dcc.Location(refresh=True): the finished job sends the browser to /compare/<job>.
COMPARE_GO = "compare-go"
COMPARE_RESULT = "compare-result"
