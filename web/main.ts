/**
 * The dashboard's browser entry (bundled by `web/build.ts`): signs in when the hub asks for a
 * token, connects with the TypeScript client (one `*` subscription with a snapshot, resumed by
 * the client after an outage), folds what arrives into the model and renders at most once per
 * animation frame, whatever the event rate.
 * @module
 */

// @ts-types="./preact.d.ts"
import { h, render } from "preact";
import { connect, type HeraldClient, type HubEvent } from "../client/mod.ts";
import type { JsonObject } from "../events/json.ts";
import { DashboardModel, runsFromHistory } from "./model.ts";
import { HubMetrics } from "./metrics.ts";
import { type Actions, Dashboard, type PageState, SignIn, type ViewName, VIEWS } from "./views.ts";

/** Where the token lives: the tab's session storage, gone when the tab closes. */
const TOKEN_KEY = "herald.token";
/** How often the hub-health charts and the agent registry are read. */
const POLL_MS = 2000;
/** Items the subscription buffers between frames before it counts drops. */
const SUBSCRIPTION_BUFFER = 5000;
/** History read for one app's past deployments. */
const HISTORY_LIMIT = 1000;

/**
 * The browser globals used here, typed locally: the project is type-checked as one program with
 * Deno's library, which the DOM library would conflict with.
 */
interface Browser {
  document: {
    getElementById(id: string): { textContent: string; focus(): void } | null;
  };
  requestAnimationFrame(callback: () => void): number;
  history: { replaceState(data: null, unused: string, url: string): void };
}
const browser = globalThis as unknown as Browser;
const { document, history } = browser;

const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading" placeholder; Preact renders into an empty root

function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders(): HeadersInit {
  const current = token();
  return current === null ? {} : { authorization: `Bearer ${current}` };
}

/** Whether the hub lets this page read: `refused` on 401/403, `down` when it cannot answer. */
async function probe(): Promise<"ok" | "refused" | "down"> {
  try {
    const response = await fetch("/apps", { headers: authHeaders(), cache: "no-store" });
    await response.body?.cancel();
    if (response.status === 401 || response.status === 403) return "refused";
    return "ok";
  } catch {
    return "down";
  }
}

/** A login flow may hand the token over as `#token=…`: keep it, and take it out of the URL. */
function takeTokenFromHash(): void {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (match === null) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]!));
  history.replaceState(null, "", location.pathname + location.search);
}

function signIn(refused: boolean): void {
  render(
    h(SignIn, {
      refused,
      onSubmit: async (value: string) => {
        sessionStorage.setItem(TOKEN_KEY, value);
        const outcome = await probe();
        if (outcome === "refused") {
          sessionStorage.removeItem(TOKEN_KEY);
          signIn(true);
        } else {
          render(null, root);
          start();
        }
      },
    }),
    root,
  );
}

function route(): Pick<PageState, "view" | "appId"> {
  const [view, appId] = location.hash.replace(/^#/, "").split("/");
  const name = (view !== undefined && view in VIEWS ? view : "apps") as ViewName;
  return {
    view: name,
    appId: name === "apps" && appId ? decodeURIComponent(appId) : null,
  };
}

function start(): void {
  const model = new DashboardModel();
  const metrics = new HubMetrics();
  const page: PageState = {
    connection: "connecting",
    everOpen: false,
    ...route(),
    appSearch: "",
    appStatus: "",
    eventFilter: { type: "", appId: "", namespace: "" },
    history: null,
    replay: null,
    registryAgents: null,
    series: metrics.series,
    now: Date.now(),
  };
  const client: HeraldClient = connect(location.origin, {
    getToken: () => token() ?? undefined,
  });
  let frame = 0;
  let rendered = -1;
  let pageVersion = 0;
  const draw = () => {
    frame = 0;
    const version = model.version + pageVersion;
    if (version === rendered) return;
    rendered = version;
    page.now = Date.now();
    render(h(Dashboard, { model, page, actions, signedIn: token() !== null }), root);
  };
  /** Renders on the next animation frame; any number of changes before it cost one render. */
  const schedule = () => {
    if (frame === 0) frame = browser.requestAnimationFrame(draw);
  };
  const changed = () => {
    pageVersion++;
    schedule();
  };
  const actions: Actions = {
    update(patch) {
      Object.assign(page, patch);
      changed();
    },
    togglePause() {
      if (model.paused) model.resume();
      else model.pause();
      schedule();
    },
    async loadHistory(appId) {
      try {
        const answer = await client.history({
          topic: "deploy.*",
          filter: { appId },
          limit: HISTORY_LIMIT,
        });
        const events = (answer.events ?? []) as unknown as HubEvent[];
        page.history = {
          appId,
          runs: runsFromHistory(events),
          error: answer.recovered === false
            ? "The hub's history no longer holds this app's deployments."
            : null,
        };
      } catch (error) {
        page.history = {
          appId,
          runs: [],
          error: `History unavailable: ${(error as Error).message}`,
        };
      }
      page.replay = null;
      changed();
    },
    signOut() {
      sessionStorage.removeItem(TOKEN_KEY);
      location.reload();
    },
  };
  addEventListener("hashchange", () => {
    Object.assign(page, route(), { replay: null });
    changed();
    document.getElementById("main")?.focus();
  });
  let probing = false;
  client.onState((state) => {
    page.connection = state;
    if (state === "open") page.everOpen = true;
    changed();
    // A browser cannot see why a WebSocket handshake failed; ask the REST side whether the
    // token is the reason, and sign in again if it is.
    if (state === "reconnecting" && !probing && token() !== null) {
      probing = true;
      void probe().then(async (outcome) => {
        probing = false;
        if (outcome === "refused") {
          sessionStorage.removeItem(TOKEN_KEY);
          await client.close();
          render(null, root);
          signIn(true);
        }
      });
    }
  });
  // Refresh relative times and the charts even when nothing else changes.
  const poll = async () => {
    try {
      const response = await fetch("/metrics", { cache: "no-store" });
      if (response.ok) metrics.add(await response.text(), Date.now());
      else await response.body?.cancel();
    } catch {
      // The hub is down: the banner says so; the charts wait.
    }
    if (page.registryAgents !== null || page.view === "agents") {
      try {
        const answer = await client.request("agents");
        page.registryAgents = Array.isArray(answer.agents) ? answer.agents as JsonObject[] : null;
      } catch {
        page.registryAgents = null; // no registry on this hub: live state's agents it is
      }
    }
    changed();
  };
  setInterval(poll, POLL_MS);
  void poll();
  void (async () => {
    const subscription = client.subscribe("*", {
      snapshot: true,
      bufferSize: SUBSCRIPTION_BUFFER,
    });
    for await (const item of subscription) {
      if (item.kind === "event") model.apply(item.event);
      else if (item.kind === "snapshot") model.load(item.state);
      else if (item.kind === "dropped") model.noteDropped(item.count);
      else if (item.kind === "lagged") model.noteDropped(item.dropped);
      schedule();
    }
  })();
  // Exposed for the end-to-end tests and for curious operators in the console.
  (globalThis as { herald?: unknown }).herald = { client, model };
  draw();
}

takeTokenFromHash();
const outcome = await probe();
if (outcome === "refused") signIn(token() !== null);
else start();
