// tether's web view: plain JavaScript over the /v1 API. The token lives in sessionStorage
// (this tab only, gone when it closes) and is sent as a bearer header; it never goes in a URL.
"use strict";

const TOKEN = "tether.token";
const REFRESH_MS = 5000;
const STATES = ["pending", "running", "unknown", "lost", "outcome_unknown", "succeeded", "failed", "cancelled"];
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function main(...children) {
  const m = document.getElementById("main");
  m.replaceChildren(...children);
}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN);
  const resp = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN);
    throw Object.assign(new Error((body && body.message) || "unauthorized"), { login: true });
  }
  if (!resp.ok) {
    throw new Error(resp.status + ": " + ((body && body.message) || resp.statusText));
  }
  return body;
}

// Every page of a paged list: `field` of each answer, following `cursor` (the answer's
// next-page field) as the query parameter `param`.
async function allPages(path, field, cursor, param) {
  const items = [];
  let next = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(next === null ? path : path + sep + param + "=" + encodeURIComponent(next));
    items.push(...page[field]);
    next = page[cursor];
  } while (next !== null && next !== undefined);
  return items;
}

function when(t) {
  if (!t) return "-";
  return t.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function stateBadge(state) {
  return el("span", { class: "state state-" + state }, state);
}

function showError(e) {
  if (e.login) return login(e.message);
  const box = el("p", { id: "error", class: "error" }, e.message);
  const m = document.getElementById("main");
  const old = document.getElementById("error");
  if (old) old.replaceWith(box); else m.prepend(box);
}

function login(message) {
  stop();
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const input = el("input", { id: "login-token", type: "password", autocomplete: "off",
    placeholder: "admin or task token", size: 48 });
  const form = el("form", { id: "login", onsubmit: (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN, input.value.trim());
    route();
  } },
    el("h1", {}, "Log in"),
    el("p", {}, "The token stays in this browser tab's session and is sent to this server only."),
    message ? el("p", { class: "error", id: "error" }, message) : null,
    input, " ", el("button", { id: "login-submit", type: "submit" }, "Log in"));
  main(form);
  input.focus();
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}

function every(fn) {
  stop();
  fn();
  timer = setInterval(fn, REFRESH_MS);
}

// The jobs list: filters in the page's own query string (never the token).
function jobsPage() {
  const q = new URLSearchParams(location.search);
  const field = (name, label, options) => {
    const value = q.get(name) || "";
    const input = options
      ? el("select", { id: "filter-" + name, name }, el("option", { value: "" }, "any"),
          options.map((o) => el("option", { value: o, selected: o === value }, o)))
      : el("input", { id: "filter-" + name, name, value, size: 14 });
    return el("label", {}, label, " ", input);
  };
  const form = el("form", { id: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["dag_id", "run_id", "task_id", "provider", "state"]) {
      const v = document.getElementById("filter-" + name).value.trim();
      if (v) next.set(name, v);
    }
    history.pushState(null, "", "/ui" + (next.toString() ? "?" + next : ""));
    route();
  } },
    field("dag_id", "DAG"), field("run_id", "run"), field("task_id", "task"),
    field("provider", "provider"), field("state", "state", STATES),
    " ", el("button", { id: "filter-apply", type: "submit" }, "Filter"));
  const counts = el("div", { id: "counts" });
  const table = el("table", { id: "jobs-table" },
    el("thead", {}, el("tr", {}, ["id", "dag", "run", "task", "job", "provider", "state",
      "generation", "try", "updated", "message"].map((h) => el("th", {}, h)))),
    el("tbody"));
  const more = el("p", { id: "paging" });
  main(el("h1", {}, "Jobs"), form, counts, table, more);

  const filters = new URLSearchParams();
  for (const name of ["dag_id", "run_id", "task_id", "provider"]) {
    if (q.get(name)) filters.set(name, q.get(name));
  }
  const listQuery = new URLSearchParams(filters);
  if (q.get("state")) listQuery.set("state", q.get("state"));
  if (q.get("before_id")) listQuery.set("before_id", q.get("before_id"));

  every(async () => {
    try {
      const [page, tally] = await Promise.all([
        api("/v1/jobs?" + listQuery), api("/v1/jobs/counts?" + filters)]);
      counts.replaceChildren(el("span", { class: "count", id: "count-total" }, "all " + tally.total),
        ...STATES.filter((s) => tally.by_state[s]).map((s) =>
          el("span", { class: "count state-" + s, id: "count-" + s }, s + " " + tally.by_state[s])));
      table.tBodies[0].replaceChildren(...page.jobs.map((j) =>
        el("tr", { class: "row-" + j.state, "data-job": j.id },
          el("td", {}, el("a", { href: "/ui/jobs/" + j.id }, j.id)),
          el("td", {}, j.dag_id), el("td", {}, j.run_id),
          el("td", {}, j.map_index >= 0 ? j.task_id + "[" + j.map_index + "]" : j.task_id),
          el("td", {}, j.name), el("td", {}, j.provider), el("td", {}, stateBadge(j.state)),
          el("td", {}, j.generation), el("td", {}, j.try_number), el("td", {}, when(j.updated_at)),
          el("td", { class: "message" }, j.message || ""))));
      if (page.jobs.length === 0) {
        table.tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 11 }, "No jobs.")));
      }
      const older = new URLSearchParams(q);
      more.replaceChildren();
      if (page.next_before_id) {
        older.set("before_id", page.next_before_id);
        more.append(el("a", { id: "older", href: "/ui?" + older }, "Older jobs"));
      }
      const old = document.getElementById("error");
      if (old) old.remove();
    } catch (e) { showError(e); }
  });
}

// A provider's run page as a link only if it is an http(s) URL (as Airflow's extra links do):
// a `javascript:` or `data:` URL from a provider is never made clickable.
function webLink(url) {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch (e) {
    return null;
  }
}

function jobPage(id) {
  const summary = el("dl", { id: "job-summary" });
  const events = el("ol", { id: "job-events", class: "timeline" });
  main(el("p", {}, el("a", { href: "/ui" }, "All jobs")), el("h1", {}, "Job " + id), summary,
    el("h2", {}, "Events"), events);
  every(async () => {
    try {
      const [j, log] = await Promise.all([api("/v1/jobs/" + id), allPages("/v1/jobs/" + id + "/events?limit=1000", "events", "next_after_id", "after_id")]);
      const row = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
      const handle = j.handle ? JSON.stringify(j.handle) : "-";
      summary.replaceChildren(
        ...row("task instance", j.dag_id + " / " + j.run_id + " / " + j.task_id +
          (j.map_index >= 0 ? " [" + j.map_index + "]" : "")),
        ...row("job", j.name + ", generation " + j.generation + ", try " + j.try_number),
        ...row("provider", j.provider),
        ...row("state", [stateBadge(j.state), j.raw_state ? " (" + j.raw_state + ")" : "", " ", j.phase]),
        ...row("handle", webLink(j.url)
          ? el("a", { href: webLink(j.url), rel: "noreferrer", target: "_blank", id: "provider-link" }, handle)
          : j.url ? [handle, " (run page, not an http(s) URL: ", el("code", { id: "provider-url" }, j.url), ")"] : handle),
        ...row("idempotency key", j.idempotency_key),
        ...row("lease", j.lease_owner ? j.lease_owner + " until " + when(j.lease_expires_at) : "none"),
        ...row("created", when(j.created_at)),
        ...row("updated", when(j.updated_at)),
        ...row("finished", when(j.finished_at)),
        ...row("cancel", j.cancel_requested_at ? when(j.cancel_requested_at) + " (" + (j.cancel_reason || "no reason") + ")" : "-"),
        ...row("provider message", el("span", { id: "job-message" }, j.message || "-")),
        ...(j.warnings.length ? row("warnings", el("ul", { class: "error" }, j.warnings.map((w) => el("li", {}, w)))) : []));
      events.replaceChildren(...log.map((e) =>
        el("li", { class: "event event-" + e.kind },
          el("time", {}, when(e.at)), " ", el("strong", {}, e.kind), " ",
          e.state ? stateBadge(e.state) : "", " ",
          el("span", { class: "actor" }, e.actor), " ",
          e.detail ? el("code", {}, JSON.stringify(e.detail)) : "")));
      const old = document.getElementById("error");
      if (old) old.remove();
    } catch (e) { stop(); showError(e); }
  });
}

function statePage() {
  stop();
  const q = new URLSearchParams(location.search);
  const kind = q.get("scope") || "task-instance";
  const input = (name, label, size) =>
    el("label", {}, label, " ", el("input", { id: "scope-" + name, name, value: q.get(name) || "", size: size || 14 }));
  const form = el("form", { id: "scope", onsubmit: (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams({ scope: document.getElementById("scope-kind").value });
    for (const name of ["dag_id", "run_id", "task_id", "map_index", "asset"]) {
      const f = document.getElementById("scope-" + name);
      if (f && f.value.trim()) next.set(name, f.value.trim());
    }
    history.pushState(null, "", "/ui/state?" + next);
    route();
  } },
    el("label", {}, "scope ", el("select", { id: "scope-kind" },
      ["task-instance", "task", "asset"].map((k) => el("option", { value: k, selected: k === kind }, k)))),
    " ", input("dag_id", "DAG"), input("run_id", "run"), input("task_id", "task"),
    input("map_index", "map index", 4), input("asset", "asset", 24),
    " ", el("button", { id: "scope-show", type: "submit" }, "Show keys"));
  const table = el("table", { id: "state-table" },
    el("thead", {}, el("tr", {}, ["key", "version", "updated", "expires", "value"].map((h) => el("th", {}, h)))),
    el("tbody"));
  main(el("h1", {}, "Task state"), form, table);
  // Every segment from the query string is encoded (none can add a path of its own), and the
  // map index must be an integer.
  const v = (name) => encodeURIComponent(q.get(name) || "");
  const mapIndex = (q.get("map_index") || "-1").trim();
  if (!/^-?[0-9]{1,10}$/.test(mapIndex)) {
    return showError(new Error("the map index must be an integer, not " + JSON.stringify(mapIndex)));
  }
  let path = null;
  if (kind === "task-instance" && q.get("dag_id") && q.get("run_id") && q.get("task_id")) {
    path = "/v1/state/task-instances/" + v("dag_id") + "/" + v("run_id") + "/" + v("task_id") + "/" + encodeURIComponent(mapIndex) + "/keys";
  } else if (kind === "task" && q.get("dag_id") && q.get("task_id")) {
    path = "/v1/state/tasks/" + v("dag_id") + "/" + v("task_id") + "/keys";
  } else if (kind === "asset" && q.get("asset")) {
    path = "/v1/state/assets/" + v("asset") + "/keys";
  }
  if (!path) return;
  // A page of keys at a time; "More keys" appends the next.
  const more = el("button", { id: "state-more", type: "button", hidden: true }, "More keys");
  table.after(more);
  const show = (after) => api(path + "?limit=100" + (after ? "&after=" + encodeURIComponent(after) : "")).then((list) => {
    table.tBodies[0].append(...list.entries.map((e) => el("tr", {},
      el("td", {}, e.key), el("td", {}, e.version), el("td", {}, when(e.updated_at)),
      el("td", {}, e.expires_at ? when(e.expires_at) : "never"),
      el("td", {}, el("code", {}, JSON.stringify(e.value))))));
    if (!after && list.entries.length === 0) {
      table.tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 5 }, "No keys.")));
    }
    more.hidden = !list.next_after;
    more.onclick = () => show(list.next_after).catch(showError);
  });
  show(null).catch(showError);
}

function route() {
  if (!sessionStorage.getItem(TOKEN)) return login();
  document.getElementById("logout").hidden = false;
  const path = location.pathname.replace(/\/+$/, "");
  const job = path.match(/^\/ui\/jobs\/(\d+)$/);
  if (job) return jobPage(job[1]);
  if (path === "/ui/state") return statePage();
  return jobsPage();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN);
    login();
  });
  window.addEventListener("popstate", route);
  route();
});
