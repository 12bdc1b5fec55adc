/* autodqm: cell renderers of the run/subsystem outlier grid (dash-ag-grid reads this file
   by its name). A status is a symbol and a word, coloured by its st-<status> class. */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions =
  window.dashAgGridComponentFunctions || {});

dagcomponentfuncs.StatusMark = function (props) {
  var marks = { flagged: "\u2717", error: "!", skipped: "\u25cb", ok: "\u2713" };
  var status = props.value || "";
  return React.createElement(
    "span",
    { className: "st st-" + status, title: "status: " + status },
    React.createElement("span", { className: "st-sym" }, marks[status] || "?"),
    " " + status
  );
};

dagcomponentfuncs.HistLink = function (props) {
  return React.createElement(
    "a",
    { href: props.data.href, className: "hist-link", title: "open the drill-down" },
    props.value
  );
};
