/**
 * The dashboard's views, as Preact components written with htm (tagged templates, no build
 * step for JSX). They render the {@linkcode DashboardModel} and the page's UI state and call
 * back into `main.ts` for anything that talks to the hub. Every status is a word and a symbol,
 * never a colour alone; every list is capped so the DOM stays small at any scale.
 * @module
 */

// @ts-types="./preact.d.ts"
import { h, type VNode } from "preact";
import htm from "htm";
import type { HubEvent } from "../client/mod.ts";
import type { JsonObject, JsonValue } from "../events/json.ts";
import type { DashboardModel, EventFilter, Run } from "./model.ts";
import type { HubSeries } from "./metrics.ts";

/** htm's types describe it as CommonJS; at run time the default export is the function. */
type Htm = {
  bind(
    h: typeof import("preact").h,
  ): (strings: TemplateStringsArray, ...values: unknown[]) => VNode;
};
const html = (htm as unknown as Htm).bind(h);

/** Rows rendered per list at most; the rest are counted, not drawn. */
export const RENDER_LIMITS = { apps: 200, events: 200, runs: 30, entries: 200 } as const;

/** An agent with no heartbeat for this long is shown stale (the agents issue's default). */
export const AGENT_STALE_MS = 45_000;

/** The views, by the hash route that opens them. */
export const VIEWS = {
  apps: "Apps",
  pipelines: "Pipelines",
  events: "Events",
  platform: "Platform",
  agents: "Agents",
  hub: "Hub",
} as const;

/** One of {@linkcode VIEWS}. */
export type ViewName = keyof typeof VIEWS;

/** What the page holds besides the model: the route, inputs, and answers from the hub. */
export interface PageState {
  connection: "connecting" | "open" | "reconnecting" | "closed";
  /** True once a connection has opened (the banner is for losing one, not for the first). */
  everOpen: boolean;
  view: ViewName;
  /** The app opened from the apps view, if any. */
  appId: string | null;
  appSearch: string;
  appStatus: "" | "healthy" | "unhealthy" | "failed" | "running";
  eventFilter: EventFilter;
  /** The opened app's past runs from history (null until loaded). */
  history: { appId: string; runs: Run[]; error: string | null } | null;
  /** The past run shown as a replayed timeline. */
  replay: Run | null;
  /** Agents from the registry (`request agents`), or null when the hub has none. */
  registryAgents: JsonObject[] | null;
  series: HubSeries;
  now: number;
}

/** The callbacks the views invoke. */
export interface Actions {
  update(patch: Partial<PageState>): void;
  togglePause(): void;
  loadHistory(appId: string): void;
  signOut(): void;
}

/** The value of the input or select an event came from (typed without the DOM library). */
const valueOf = (e: Event): string => String((e.target as unknown as { value: string }).value);

const str = (value: JsonValue | undefined): string => typeof value === "string" ? value : "";

/** A duration as `850ms`, `3.1s` or `2m05s`. */
function duration(ms: number | null): string {
  if (ms === null) return "";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** How long ago, coarsely. */
function ago(at: number, now: number): string {
  if (at === 0) return "";
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

type Tone = "ok" | "bad" | "busy" | "idle";

/** A status as symbol and word (the colour only repeats what they say). */
function badge(word: string | null, tone: Tone): VNode {
  const symbol = { ok: "✔", bad: "✖", busy: "◐", idle: "○" }[tone];
  return html`<span class=${`badge ${tone}`}><span aria-hidden="true">${symbol}</span> ${
    word ?? "unknown"
  }</span>`;
}

function toneOf(word: string | null | undefined): Tone {
  const w = (word ?? "").toLowerCase();
  if (/^(healthy|running|completed|done|online|ok|ready|passed|active|succeeded|ended)$/.test(w)) {
    return "ok";
  }
  if (/^(unhealthy|failed|error|offline|degraded|crashed|stale)$/.test(w)) return "bad";
  if (/^(queued|deploying|pending|building|starting|progressing|reconciling)$/.test(w)) {
    return "busy";
  }
  return w === "" ? "idle" : "busy";
}

const statusBadge = (word: string | null | undefined) => badge(word ?? null, toneOf(word));

/** A run's or step's status: in progress is never shown as success. */
const runBadge = (word: string) =>
  badge(word, word === "running" || word === "queued" ? "busy" : toneOf(word));

function header(page: PageState, actions: Actions, signedIn: boolean): VNode {
  const label = {
    open: "Connected",
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",
    closed: "Disconnected",
  }[page.connection];
  const tone: Tone = page.connection === "open"
    ? "ok"
    : page.connection === "closed"
    ? "bad"
    : "busy";
  return html`<header class="top">
    <h1>Herald</h1>
    <nav aria-label="Views">
      <ul>${
    (Object.keys(VIEWS) as ViewName[]).map((view) =>
      html`<li><a href=${`#${view}`} aria-current=${page.view === view ? "page" : undefined}>${
        VIEWS[view]
      }</a></li>`
    )
  }</ul>
    </nav>
    <p class="connection" data-testid="connection" role="status">${badge(label, tone)}</p>
    ${
    signedIn
      ? html`<button type="button" class="link" onClick=${actions.signOut}>Sign out</button>`
      : null
  }
  </header>`;
}

function banner(page: PageState): VNode | null {
  if (!page.everOpen || page.connection === "open") return null;
  const text = page.connection === "closed"
    ? "Disconnected from the hub. Reload the page to try again."
    : "Reconnecting… the hub is unreachable; the view resumes where it left off.";
  return html`<div class="banner" role="alert" data-testid="banner">${text}</div>`;
}

function more(shown: number, total: number, what: string): VNode | null {
  return total > shown
    ? html`<p class="more">Showing ${shown} of ${total} ${what}; refine the filter to see others.</p>`
    : null;
}

function appsView(model: DashboardModel, page: PageState, actions: Actions): VNode {
  const search = page.appSearch.trim().toLowerCase();
  const matches = [...model.apps.values()].filter((app) => {
    if (search !== "" && !app.appId.toLowerCase().includes(search)) return false;
    switch (page.appStatus) {
      case "":
        return true;
      case "healthy":
        return toneOf(app.health) === "ok";
      case "unhealthy":
        return toneOf(app.health) === "bad";
      case "failed":
        return app.deployment?.status === "failed";
      case "running":
        return app.deployment?.status === "running" || app.deployment?.status === "queued";
    }
  }).sort((a, b) => a.appId.localeCompare(b.appId));
  const rows = matches.slice(0, RENDER_LIMITS.apps);
  return html`<section aria-labelledby="apps-title">
    <h2 id="apps-title">Apps <span class="count">${model.apps.size}</span></h2>
    <div class="filters">
      <label>Search <input type="search" value=${page.appSearch} data-testid="app-search"
        onInput=${(e: Event) => actions.update({ appSearch: valueOf(e) })} /></label>
      <label>Show <select value=${page.appStatus} onChange=${(e: Event) =>
    actions.update({
      appStatus: valueOf(e) as PageState["appStatus"],
    })}>
        <option value="">all</option><option value="healthy">healthy</option>
        <option value="unhealthy">unhealthy</option><option value="running">deploying</option>
        <option value="failed">last deploy failed</option>
      </select></label>
    </div>
    <table class="list" data-testid="apps">
      <thead><tr><th scope="col">App</th><th scope="col">Status</th><th scope="col">Health</th>
        <th scope="col">Last deployment</th></tr></thead>
      <tbody>${
    rows.map((app) =>
      html`
        <tr key=${app.appId} data-app=${app.appId}>
          <th scope="row"><a href=${`#apps/${encodeURIComponent(app.appId)}`}>${app.appId}</a></th>
          <td>${statusBadge(app.status)}</td>
          <td>${statusBadge(app.health)}</td>
          <td>${app.deployment === null ? "—" : html`
            ${runBadge(app.deployment.status)} ${app.deployment.imageTag ?? ""} <span
              class="muted">${ago(app.deployment.at, page.now)}</span>
          `}</td>
        </tr>
      `
    )
  }</tbody>
    </table>
    ${
    rows.length === 0 ? html`<p class="empty">No apps yet. Publish an event to see one.</p>` : null
  }
    ${more(rows.length, matches.length, "apps")}
  </section>`;
}

/** A run's timeline: steps with status, duration, a bar on the run's time axis, output, error. */
function runView(run: Run, now: number, testid = "run"): VNode {
  const end = run.finishedAt ?? now;
  const span = Math.max(1, end - run.queuedAt);
  const total = run.finishedAt === null ? null : run.finishedAt - run.queuedAt;
  return html`<article class="run" data-testid=${testid} data-run=${`${run.kind}:${run.appId}`}>
    <h3>${run.kind} ${run.appId} ${run.imageTag ?? ""} ${runBadge(run.status)} <span
      class="muted">${total === null ? ago(run.queuedAt, now) : `in ${duration(total)}`}</span></h3>
    <ol class="steps">${
    run.steps.map((step) => {
      const ms = step.durationMs ?? Math.max(0, now - step.startedAt);
      const left = ((step.startedAt - run.queuedAt) / span) * 100;
      const width = Math.max(0.5, (ms / span) * 100);
      return html`
        <li key=${step.name} class=${`step ${step.status}`} data-step=${step.name}
          data-status=${step.status}>
                <span class="step-name">${runBadge(step.status)} ${step.name}</span>
                <span class="step-time" data-testid="step-duration">${step.durationMs === null
                  ? ""
                  : duration(step.durationMs)}</span>
                <span class="bar" aria-hidden="true"><span style=${`margin-left:${
                  Math.min(99, Math.max(0, left))
                }%;width:${Math.min(100, width)}%`}></span></span>
                ${step.output.length === 0
                  ? null
                  : html`<pre class="output">${step.output.slice(-5).join("\n")}</pre>`}
                ${step.error === null ? null : html`<p class="error">Error: ${step.error}</p>`}
              </li>
      `;
    })
  }</ol>
    ${
    run.error !== null && !run.steps.some((step) => step.error !== null)
      ? html`<p class="error">Error: ${run.error}</p>`
      : null
  }
  </article>`;
}

function pipelinesView(model: DashboardModel, page: PageState): VNode {
  const live = model.liveRuns();
  const recent = model.recent.slice(-RENDER_LIMITS.runs).reverse();
  return html`<section aria-labelledby="pipelines-title">
    <h2 id="pipelines-title">Pipelines</h2>
    <h3 class="sub">In progress <span class="count">${live.length}</span></h3>
    <div data-testid="live-runs">${
    live.slice(0, RENDER_LIMITS.runs).map((run) => runView(run, page.now))
  }</div>
    ${live.length === 0 ? html`<p class="empty">Nothing running.</p>` : null}
    ${more(Math.min(live.length, RENDER_LIMITS.runs), live.length, "runs")}
    <h3 class="sub">Recent</h3>
    <div data-testid="recent-runs">${
    recent.map((run) => runView(run, page.now, "recent-run"))
  }</div>
    ${
    recent.length === 0 ? html`<p class="empty">No run finished since the page opened.</p>` : null
  }
  </section>`;
}

function appView(model: DashboardModel, page: PageState, actions: Actions, appId: string): VNode {
  const app = model.apps.get(appId);
  const runs = (["deploy", "forge", "teardown"] as const).flatMap((kind) => {
    const run = model.runs.get(`${kind}:${appId}`);
    return run === undefined ? [] : [run];
  });
  const resources = [...model.resources.values()].filter((r) => r.appId === appId);
  const history = page.history?.appId === appId ? page.history : null;
  const deploys = history?.runs.filter((run) => run.kind === "deploy").reverse() ?? [];
  return html`<section aria-labelledby="app-title" data-testid="app-detail">
    <p><a href="#apps">← All apps</a></p>
    <h2 id="app-title">${appId}</h2>
    ${
    app === undefined ? html`<p class="empty">This app has not been seen yet.</p>` : html`
      <dl
        class="facts">
        <dt>Status</dt>
        <dd>${statusBadge(app.status)}</dd>
        <dt>Health</dt>
        <dd>${statusBadge(app.health)}</dd>
        <dt>Image</dt>
        <dd>${app.imageTag ?? "—"}</dd>
      </dl>
    `
  }
    <h3 class="sub">Current runs</h3>
    ${runs.map((run) => runView(run, page.now))}
    ${runs.length === 0 ? html`<p class="empty">No runs.</p>` : null}
    ${
    resources.length === 0 ? null : html`
      <h3 class="sub">Resources</h3>
      <ul>${resources.map((r) =>
        html`<li>${str(r.resource)} ${statusBadge(str(r.status))}</li>`
      )}</ul>
    `
  }
    <h3 class="sub">Past deployments</h3>
    <button type="button" data-testid="load-history" onClick=${() => actions.loadHistory(appId)}>${
    history === null ? "Load from history" : "Reload from history"
  }</button>
    ${history?.error ? html`<p class="error">${history.error}</p>` : null}
    ${
    history !== null && deploys.length === 0 && !history.error
      ? html`<p class="empty">No deployment in the hub's history.</p>`
      : null
  }
    <ul class="past" data-testid="past-deploys">${
    deploys.map((run, index) =>
      html`<li key=${run.queuedAt + ":" + index}><button type="button" class="link"
        aria-pressed=${page.replay === run} onClick=${() => actions.update({ replay: run })}>
        ${new Date(run.queuedAt).toLocaleString()} ${run.imageTag ?? ""}</button> ${
        runBadge(run.status)
      }</li>`
    )
  }</ul>
    ${
    page.replay !== null && page.replay.appId === appId
      ? html`<h3 class="sub">Replayed from history</h3>${runView(page.replay, page.now, "replay")}`
      : null
  }
  </section>`;
}

/**
 * Event rows, made once per event: events never change, and Preact skips diffing a vnode it
 * rendered before, so a frame costs the new rows only.
 */
const eventRows = new WeakMap<HubEvent, VNode>();

function eventRow(event: HubEvent): VNode {
  let row = eventRows.get(event);
  if (row === undefined) {
    row = html`
      <tr key=${event.id} data-id=${event.id} data-seq=${event.seq}>
        <td>${event.timestamp.slice(11, 23)}</td>
        <td>${event.type}</td>
        <td>${event.appId ?? ""}</td>
        <td>${event.namespace ?? ""}</td>
        <td class="payload">${JSON.stringify(event.payload).slice(0, 160)}</td>
      </tr>
    `;
    eventRows.set(event, row);
  }
  return row;
}

function eventsView(model: DashboardModel, page: PageState, actions: Actions): VNode {
  const rows = model.visibleEvents(page.eventFilter, RENDER_LIMITS.events);
  const field = (name: keyof EventFilter, label: string, placeholder: string) =>
    html`<label>${label} <input value=${page.eventFilter[name]} placeholder=${placeholder}
      data-testid=${`filter-${name}`} onInput=${(e: Event) =>
      actions.update({
        eventFilter: { ...page.eventFilter, [name]: valueOf(e) },
      })} /></label>`;
  return html`<section aria-labelledby="events-title">
    <h2 id="events-title">Events</h2>
    <div class="filters">
      ${field("type", "Type", "deploy.*")} ${field("appId", "App", "any")}
      ${field("namespace", "Namespace", "any")}
      <button type="button" data-testid="pause" aria-pressed=${model.paused} onClick=${actions.togglePause}>${
    model.paused ? "Resume" : "Pause"
  }</button>
      <span class="muted" data-testid="event-counts">${
    model.paused ? `${model.held} held · ` : ""
  }${model.dropped} dropped</span>
    </div>
    <table class="list events" data-testid="events">
      <thead><tr><th scope="col">Time</th><th scope="col">Type</th><th scope="col">App</th>
        <th scope="col">Namespace</th><th scope="col">Payload</th></tr></thead>
      <tbody>${rows.map(eventRow)}</tbody>
    </table>
    ${rows.length === 0 ? html`<p class="empty">No events match yet.</p>` : null}
  </section>`;
}

function table(
  title: string,
  testid: string,
  columns: readonly string[],
  rows: readonly JsonObject[],
  cells: (row: JsonObject) => unknown[],
): VNode {
  const shown = rows.slice(0, RENDER_LIMITS.entries);
  return html`<h3 class="sub">${title} <span class="count">${rows.length}</span></h3>
    ${
    rows.length === 0 ? html`<p class="empty">None reported.</p>` : html`
      <table class="list"
        data-testid=${testid}>
        <thead>
          <tr>${columns.map((c) => html`<th scope="col">${c}</th>`)}</tr>
        </thead>
        <tbody>${shown.map((row) =>
          html`<tr>${cells(row).map((c) => html`<td>${c}</td>`)}</tr>`
        )}</tbody>
      </table>
    `
  }
    ${more(shown.length, rows.length, title.toLowerCase())}`;
}

function platformView(model: DashboardModel, page: PageState): VNode {
  const loops = [...model.reconcile.values()].reverse().map((loop) => ({
    name: loop.name,
    state: loop.endedAt === null ? "reconciling" : loop.result ?? "ended",
    took: loop.endedAt === null ? "" : duration(loop.durationMs ?? loop.endedAt - loop.startedAt),
    at: ago(loop.endedAt ?? loop.startedAt, page.now),
  }));
  return html`<section aria-labelledby="platform-title">
    <h2 id="platform-title">Personas, clusters, reconcile loops, resources</h2>
    ${
    table("Personas", "personas", ["Namespace", "Name", "Type", "Phase", "Health", "Validation"], [
      ...model.personas.values(),
    ], (p) => {
      const validation = p.validation as JsonObject | undefined;
      return [
        str(p.namespace),
        str(p.name),
        str(p.type),
        statusBadge(str(p.phase)),
        statusBadge(str(p.health)),
        validation
          ? badge(validation.passed ? "passed" : "failed", validation.passed ? "ok" : "bad")
          : "—",
      ];
    })
  }
    ${
    table("Clusters", "clusters", ["Name", "Environment", "Phase", "Kubernetes", "Nodes"], [
      ...model.clusters.values(),
    ], (c) => [
      str(c.name),
      str(c.environment),
      statusBadge(str(c.phase)),
      str(c.kubernetesVersion),
      String(c.nodeCount ?? 0),
    ])
  }
    ${
    table("Reconcile loops", "reconcile", ["Loop", "State", "Took", "When"], loops, (l) => [
      str(l.name),
      statusBadge(str(l.state)),
      str(l.took),
      str(l.at),
    ])
  }
    ${
    table("Resources", "resources", ["Resource", "App", "Namespace", "Status"], [
      ...model.resources.values(),
    ], (r) => [str(r.resource), str(r.appId), str(r.namespace), statusBadge(str(r.status))])
  }
  </section>`;
}

/** An agent's presence: offline, stale (no heartbeat for {@linkcode AGENT_STALE_MS}), online. */
function agentPresence(agent: JsonObject, now: number): { word: string; beat: number } {
  const info = (agent.info ?? {}) as JsonObject;
  const beat = Date.parse(
    str(agent.lastHeartbeat) || str(info.lastHeartbeat) || str(agent.since),
  );
  const status = str(agent.status) || "online";
  if (status === "offline" || status === "stale") return { word: status, beat };
  if (Number.isFinite(beat) && now - beat > AGENT_STALE_MS) return { word: "stale", beat };
  return { word: "online", beat };
}

function agentsView(model: DashboardModel, page: PageState): VNode {
  const agents = page.registryAgents ?? [...model.agents.values()];
  const capacity = (agent: JsonObject) => {
    const value = agent.capacity ?? ((agent.info ?? {}) as JsonObject).capacity;
    if (value === undefined || value === null) return "—";
    return typeof value === "object"
      ? Object.entries(value).map(([k, v]) => `${k} ${v}`).join(", ")
      : String(value);
  };
  return html`<section aria-labelledby="agents-title">
    <h2 id="agents-title">Agents</h2>
    <p class="muted">${
    page.registryAgents === null
      ? "From live state (agent.online / agent.offline events)."
      : "From the hub's agent registry."
  }</p>
    ${
    table("Agents", "agents", ["Agent", "Presence", "Last heartbeat", "Capacity"], agents, (a) => {
      const presence = agentPresence(a, page.now);
      return [
        str(a.agentId),
        statusBadge(presence.word),
        Number.isFinite(presence.beat) ? ago(presence.beat, page.now) : "—",
        capacity(a),
      ];
    })
  }
  </section>`;
}

/** A small line chart of `values` with its latest value as text. */
function chart(title: string, values: readonly number[], unit: string): VNode {
  const width = 240;
  const height = 60;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) =>
    `${(i * step).toFixed(1)},${(height - (v / max) * height).toFixed(1)}`
  )
    .join(" ");
  const last = values.at(-1);
  return html`
    <figure class="chart" data-testid="chart">
      <figcaption>${title}: <strong>${last === undefined
        ? "—"
        : `${last}${unit}`}</strong></figcaption>
      <svg viewBox=${`0 0 ${width} ${height}`} role="img" aria-label=${`${title}, last ${values.length} samples, max ${max}`}>
        <polyline fill="none" stroke="currentColor" stroke-width="2" points=${points} />
      </svg>
    </figure>
  `;
}

function hubView(page: PageState): VNode {
  const s = page.series;
  return html`
    <section aria-labelledby="hub-title">
      <h2 id="hub-title">Hub health</h2>
      <p class="muted">From /metrics, every 2 seconds.</p>
      <div class="charts">
          ${chart("Connections", s.connections, "")}
          ${chart("Events published", s.eventRate, "/s")}
          ${chart("Events dropped", s.drops, "/s")}
          ${chart("Slow-consumer disconnects", s.slowDisconnects, "")}
        </div>
    </section>
  `;
}

/**
 * The whole page: header with the connection state, the "Reconnecting…" banner, the view the
 * route names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dashboard, VIEWS } from "./views.ts";
 * assert.equal(typeof Dashboard, "function");
 * assert.equal(VIEWS.pipelines, "Pipelines");
 * ```
 */
export function Dashboard(
  props: { model: DashboardModel; page: PageState; actions: Actions; signedIn: boolean },
): VNode {
  const { model, page, actions } = props;
  let body: VNode;
  if (page.view === "apps" && page.appId !== null) body = appView(model, page, actions, page.appId);
  else if (page.view === "apps") body = appsView(model, page, actions);
  else if (page.view === "pipelines") body = pipelinesView(model, page);
  else if (page.view === "events") body = eventsView(model, page, actions);
  else if (page.view === "platform") body = platformView(model, page);
  else if (page.view === "agents") body = agentsView(model, page);
  else body = hubView(page);
  return html`${header(page, actions, props.signedIn)}${
    banner(page)
  }<main id="main" tabindex="-1">${body}</main>`;
}

/**
 * The sign-in form shown when the hub refuses the page's reads: a token field (kept in session
 * storage once accepted) and why the last try failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SignIn } from "./views.ts";
 * assert.equal(typeof SignIn, "function");
 * ```
 */
export function SignIn(
  props: { refused: boolean; onSubmit: (token: string) => void },
): VNode {
  return html`
    <main id="main" class="signin">
      <h1>Herald</h1>
      <form data-testid="signin" onSubmit=${(e: Event) => {
        e.preventDefault();
        const form = e.target as unknown as { elements: { namedItem(name: string): unknown } };
        props.onSubmit(
          valueOf({ target: form.elements.namedItem("token") } as unknown as Event).trim(),
        );
      }}>
          <p>This hub needs a token to read its events.</p>
          <label>Access token <input name="token" type="password" autocomplete="off" required
            autofocus data-testid="token" /></label>
          <button type="submit">Sign in</button>
          ${props.refused
            ? html`<p class="error" role="alert" data-testid="refused">The hub refused this token.</p>`
            : null}
        </form>
    </main>
  `;
}
