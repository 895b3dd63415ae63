// oxka console: live charts (uPlot) and confirmation of actions.
// No framework; the pages work without this script except for charts.
(function () {
  "use strict";
  var REFRESH_MS = 5000;

  // Actions: ask first; the server refuses forms whose `confirm` is not "yes".
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); return; }
      var c = form.querySelector("input[name=confirm]");
      if (c) c.value = "yes";
    });
  });

  function fmtBytes(v) {
    if (v == null) return "–";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v.toFixed(0)) + " " + u[i] + "/s";
  }

  function live(json) {
    var d = json.data, n = d[0].length;
    if (!n) return;
    var set = function (k, text) {
      document.querySelectorAll('[data-live="' + k + '"]').forEach(function (e) { e.textContent = text; });
    };
    var m = d[1][n - 1];
    set("messages_in", m == null ? "–" : m.toFixed(1) + " msg/s");
    set("bytes_in", fmtBytes(d[2][n - 1]));
    set("bytes_out", fmtBytes(d[3][n - 1]));
  }

  function chart(el) {
    var src = el.getAttribute("data-src"), kind = el.getAttribute("data-chart"), plot = null;
    function opts(json) {
      var colors = ["#2f6fdf", "#2f855a", "#b7791f"];
      var series = [{}];
      json.series.forEach(function (name, i) {
        var s = { label: name, stroke: colors[i % colors.length], width: 2, spanGaps: true };
        if (name.indexOf("bytes") === 0) s.scale = "bytes";
        series.push(s);
      });
      var axes = [{}, { scale: kind === "lag" ? "y" : "y", label: kind === "lag" ? "records" : "messages/s" }];
      if (kind === "throughput") axes.push({ scale: "bytes", side: 1, label: "bytes/s", size: 80,
        grid: { show: false },
        values: function (u, vals) { return vals.map(function (v) { return fmtBytes(v).replace("/s", ""); }); } });
      return { width: Math.max(300, el.clientWidth - 16), height: 220, series: series, axes: axes,
               scales: { x: { time: true } } };
    }
    function refresh() {
      fetch(src, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (json) {
          if (kind === "throughput") live(json);
          if (!window.uPlot) return;
          if (!plot) {
            el.textContent = "";
            plot = new uPlot(opts(json), json.data, el);
            el.setAttribute("data-ready", "1");
          } else {
            plot.setData(json.data);
          }
          el.setAttribute("data-points", String(json.data[0].length));
        })
        .catch(function () { /* the next refresh tries again */ });
    }
    refresh();
    setInterval(refresh, REFRESH_MS);
    window.addEventListener("resize", function () {
      if (plot) plot.setSize({ width: Math.max(300, el.clientWidth - 16), height: 220 });
    });
  }
  document.querySelectorAll("[data-chart]").forEach(chart);
})();
