/* autodqm: functions the outlier grid's column definitions name (dash-ag-grid reads this
   file by its name). Statuses sort by severity, not alphabetically. */
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

dagfuncs.statusOrder = function (a, b) {
  var rank = { flagged: 3, error: 2, skipped: 1, ok: 0 };
  return (rank[a] === undefined ? -1 : rank[a]) - (rank[b] === undefined ? -1 : rank[b]);
};
