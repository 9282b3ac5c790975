// nest's web UI: renders the views the server pushes over one Server-Sent Events stream, and sends the controls
// as POSTs that carry this process's token. No framework: the page is small and must work offline.
"use strict";
(function () {
  const token = document.querySelector('meta[name="nest-token"]').content;
  const $ = (id) => document.getElementById(id);
  let points = [];
  let setupShown = false;
  let charts = null;
  let lastView = null;

  const fmt = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const fmtTime = (s) => {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h" : "") + (h || m ? m + "m" : "") + r + "s";
  };
  const cell = (text, numeric) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "n";
    return td;
  };
  const fill = (tbody, rows) => {
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells);
      return tr;
    }));
  };

  function say(text) {
    const m = $("message");
    m.textContent = text || "";
    m.hidden = !text;
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Nest-Token": token },
      body: JSON.stringify(body || {}),
    });
    if (!response.ok) {
      say(path.replace("/api/", "") + ": " + (await response.text()));
      return false;
    }
    say("");
    return true;
  }

  const numberOf = (id) => {
    const text = $(id).value.trim();
    return text === "" ? null : Number(text);
  };

  function showSetup(setup) {
    const tbody = $("mix").querySelector("tbody");
    fill(tbody, setup.mix.map((row) => {
      const weight = document.createElement("td");
      const input = document.createElement("input");
      input.type = "number";
      input.min = "0";
      input.step = "1";
      input.value = row.weight;
      input.id = "weight-" + row.name;
      input.dataset.taskset = row.name;
      weight.append(input);
      return [cell(row.name), weight, cell(fmt(row.share_pct, 1) + "%", true), cell(row.wait || "–"),
        cell(row.tasks.map((t) => t.name + " (" + t.weight + ")").join(", "))];
    }));
    const load = setup.load;
    $("load-closed").hidden = load.model !== "closed";
    $("load-open").hidden = load.model !== "open";
    $("load-fixed").hidden = load.model !== "fixed";
    if (load.model === "closed") {
      $("users").value = load.users;
      $("spawn-rate").value = load.spawn_rate === null ? "" : load.spawn_rate;
    } else if (load.model === "open") {
      $("rate").value = load.rate;
    } else {
      $("load-fixed").textContent = "Load: " + load.description + " (set by the config or the script).";
    }
    $("run-time").value = setup.run_time_s === null ? "" : setup.run_time_s;
    $("setup-host").value = setup.host;
  }

  function startForm(setup) {
    const form = { weights: {} };
    for (const input of $("mix").querySelectorAll("input[data-taskset]")) {
      form.weights[input.dataset.taskset] = Number(input.value);
    }
    if (setup.load.model === "closed") {
      form.users = numberOf("users");
      form.spawn_rate = numberOf("spawn-rate");
    } else if (setup.load.model === "open") {
      form.rate = numberOf("rate");
    }
    form.run_time_s = numberOf("run-time");
    return form;
  }

  function makeCharts() {
    const width = Math.max(320, $("tab-charts").clientWidth - 30 || document.body.clientWidth - 80);
    const opts = (title, series) => ({
      title, width, height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "seconds" }, {}],
      series: [{ label: "t" }].concat(series),
    });
    return {
      rps: new uPlot(opts("Requests per second", [
        { label: "req/s", stroke: "#2f6fdf", width: 2 },
        { label: "failures/s", stroke: "#c62f2f", width: 2 },
      ]), [[], [], []], $("chart-rps")),
      latency: new uPlot(opts("Response time (ms)", [
        { label: "p50", stroke: "#23864a", width: 2 },
        { label: "p95", stroke: "#d08a12", width: 2 },
        { label: "p99", stroke: "#c62f2f", width: 2 },
      ]), [[], [], [], []], $("chart-latency")),
      users: new uPlot(opts("Users", [{ label: "users", stroke: "#6b4bd6", width: 2 }]), [[], []], $("chart-users")),
    };
  }

  function drawCharts() {
    if (!charts) {
      charts = makeCharts();
      window.nestCharts = charts;
    }
    const t = points.map((p) => p.t);
    charts.rps.setData([t, points.map((p) => p.rps), points.map((p) => p.fps)]);
    charts.latency.setData([t, points.map((p) => p.p50), points.map((p) => p.p95), points.map((p) => p.p99)]);
    charts.users.setData([t, points.map((p) => p.users)]);
  }

  function addPoints(recent) {
    const last = points.length ? points[points.length - 1].t : -1;
    let added = false;
    for (const p of recent) {
      if (p.t > last) {
        points.push(p);
        added = true;
      }
    }
    return added;
  }

  function showLive(live) {
    $("users-now").textContent = live.users;
    $("rps-now").textContent = fmt(live.rps, 1);
    $("fps-now").textContent = fmt(live.fps, 1);
    $("elapsed").textContent = fmtTime(live.elapsed_s);
    $("remaining").textContent = live.remaining_s === null ? "until stopped" : fmtTime(live.remaining_s);
    const counted = $("counted-from");
    counted.hidden = !live.counted_from_s;
    counted.textContent = "Statistics count from " + fmtTime(live.counted_from_s) + " into the run (reset).";
    fill($("stats").querySelector("tbody"), live.rows.map((r) => [cell(r.method), cell(r.name),
      cell(r.requests, true), cell(r.fails, true), cell(fmt(r.rps, 1), true), cell(fmt(r.p50, 1), true),
      cell(fmt(r.p95, 1), true), cell(fmt(r.p99, 1), true), cell(fmt(r.max, 1), true)]));
    fill($("stats").querySelector("tfoot"), [[cell(""), cell("Total"), cell(live.requests, true),
      cell(live.failures, true), cell(fmt(live.rps, 1), true), cell(""), cell(""), cell(""), cell("")]]);
    fill($("failed").querySelector("tbody"), live.failed.map((f) => [cell(f.method), cell(f.name), cell(f.reason),
      cell(f.count, true)]));
    fill($("errors").querySelector("tbody"), live.errors.map((e) => {
      const where = cell("");
      const code = document.createElement("code");
      code.textContent = e.location;
      where.append(code);
      return [where, cell(e.message), cell(e.count, true)];
    }));
    const problems = live.failed.reduce((n, f) => n + f.count, 0) + live.errors.reduce((n, e) => n + e.count, 0);
    $("failures-count").textContent = problems ? "(" + problems + ")" : "";
  }

  function showVerdicts(verdicts, finished) {
    $("no-thresholds").hidden = verdicts.length > 0;
    fill($("verdicts").querySelector("tbody"), verdicts.map((v) => {
      const verdict = cell(v.passed ? "pass" : "fail");
      verdict.className = v.passed ? "pass" : "fail";
      const observed = v.observed === null || v.observed === undefined ? "–" : fmt(v.observed, 2) + " " + v.unit;
      return [cell(v.expr), verdict, cell(observed, true), cell(finished ? v.message : "live")];
    }));
  }

  function showSegments(segments) {
    $("tab-segments-button").hidden = !segments;
    if (!segments) return;
    const skew = (ms) => (ms === null || ms === undefined ? "–" : (ms > 0 ? "+" : "") + fmt(ms, 1) + " ms");
    fill($("segments").querySelector("tbody"), segments.rows.map((s) => [cell(s.index, true), cell(s.host),
      cell(s.state), cell(skew(s.start_skew_ms), true), cell(s.users, true),
      cell(s.last_seen_s === null ? "–" : fmtTime(s.last_seen_s) + " ago")]));
  }

  function showTarget(target) {
    $("steer-closed").hidden = !target || target.model !== "closed";
    $("steer-open").hidden = !target || target.model !== "open";
    if (!target) return;
    const active = document.activeElement;
    if (target.model === "closed") {
      if (active !== $("new-users")) $("new-users").placeholder = target.users;
      if (active !== $("new-spawn-rate") && target.spawn_rate !== null) $("new-spawn-rate").placeholder = target.spawn_rate;
    } else if (active !== $("new-rate")) {
      $("new-rate").placeholder = target.rate;
    }
  }

  function render(view) {
    lastView = view;
    $("host").textContent = view.setup.host;
    const waiting = view.phase === "waiting";
    $("setup").hidden = !waiting;
    $("tabs").hidden = waiting;
    $("controls").hidden = view.phase !== "running";
    if (waiting && !setupShown) {
      showSetup(view.setup);
      setupShown = true;
    }
    if (!waiting && !document.querySelector(".tab:not([hidden])")) selectTab("stats");
    $("status").textContent = view.phase === "running" && view.live ? view.live.run_phase === "load" ? "running"
      : view.live.run_phase : view.phase === "running" ? "starting" : view.phase;
    if (view.live) showLive(view.live);
    showVerdicts(view.verdicts, view.phase === "finished");
    showTarget(view.phase === "running" ? view.target : null);
    $("reset").hidden = !view.can_reset;
    showSegments(view.segments);
    $("download-note").textContent = view.phase === "finished" ? "The final report of the run."
      : "The report of the run so far (totals; the per-second history comes with the final report).";
    if (addPoints(view.points) || (charts === null && !waiting)) drawCharts();
  }

  function selectTab(name) {
    for (const b of $("tabs").querySelectorAll("button")) b.classList.toggle("active", b.dataset.tab === name);
    for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + name;
    if (name === "charts" && charts) {
      const width = Math.max(320, $("tab-charts").clientWidth - 30);
      for (const c of Object.values(charts)) c.setSize({ width, height: 220 });
    }
  }

  $("tabs").addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (button && button.dataset.tab) selectTab(button.dataset.tab);
  });
  $("start-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!lastView) return;
    $("start").disabled = true;
    await post("/api/start", startForm(lastView.setup));
    $("start").disabled = false;
  });
  $("stop").addEventListener("click", () => post("/api/stop"));
  $("reset").addEventListener("click", () => post("/api/reset"));
  $("steer-closed").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await post("/api/users", { users: numberOf("new-users"), spawn_rate: numberOf("new-spawn-rate") })) {
      $("new-users").value = "";
    }
  });
  $("steer-open").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await post("/api/rate", { rate: numberOf("new-rate") })) $("new-rate").value = "";
  });

  const events = new EventSource("/api/events");
  events.addEventListener("history", (e) => {
    points = JSON.parse(e.data);
  });
  events.addEventListener("view", (e) => render(JSON.parse(e.data)));
  events.onerror = () => {
    if (lastView && lastView.phase === "finished") $("status").textContent = "finished (nest has exited)";
    else $("status").textContent = "disconnected, retrying";
  };
})();
