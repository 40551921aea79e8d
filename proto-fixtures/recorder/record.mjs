#!/usr/bin/env node
// Records protocol exchanges of the official Inngest TypeScript SDK.
//
//   cd proto-fixtures/recorder && npm ci && node record.mjs [--out DIR]
//
// Starts fixture-app.mjs (the conformance fixture written with the official
// SDK) as a child process in dev mode, plus an in-process fake of the Inngest
// event API, then plays the executor for every scenario and writes one JSON
// file per scenario (default: the proto-fixtures folder, i.e. this file's
// parent directory).
//
// Everything the recorder controls is fixed (run ids, event ids, timestamps,
// request ids), so re-recording gives the same files apart from values the
// SDK derives from the wall clock or the call stack, which are replaced by
// placeholders: error `stack` -> "<stack>", op `timing` -> "<timing>".

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const { version: sdkVersion } = await import("inngest");

// ---------------------------------------------------------------- arguments --
let outDir = path.resolve(here, "..");
let only = null;
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === "--out") outDir = path.resolve(process.argv[++i]);
  else if (a.startsWith("--out=")) outDir = path.resolve(a.slice(6));
  else if (a === "--only") only = new Set(process.argv[++i].split(","));
  else if (a === "-h" || a === "--help") {
    console.log("usage: node record.mjs [--out DIR] [--only scenario,scenario]");
    process.exit(0);
  } else {
    console.error(`unknown argument: ${a}`);
    process.exit(2);
  }
}
fs.mkdirSync(outDir, { recursive: true });

// -------------------------------------------------------------- constants --
const APP_ID = "conformance-fixture";
const EVENT_KEY = "conformance-test-event-key";
const SIGNING_KEY = "signkey-test-7468697320697320612074657374206b6579";
const CALL_TIMEOUT_MS = 15000;
const BASE_TS = 1760000000000; // fixed event timestamp (ms)
const KEEP_RESPONSE_HEADERS = [
  "x-inngest-no-retry",
  "retry-after",
  "x-inngest-req-version",
  "content-type",
  "x-inngest-sync-kind",
];

// ------------------------------------------------------------------ helpers --
const sha1 = (s) => crypto.createHash("sha1").update(s, "utf8").digest("hex");

// RFC 8785 (JCS) canonical JSON: keys sorted by UTF-16 code units, no
// whitespace, ECMAScript number/string serialisation (= JSON.stringify).
function canonical(v) {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
// Deterministic 26-char ULID-like id derived from a seed string.
function ulidLike(seed) {
  const h = crypto.createHash("sha256").update(seed).digest();
  let s = "01K";
  for (let i = 0; s.length < 26; i++) s += CROCKFORD[h[i] % 32];
  return s;
}
// Deterministic UUID derived from a seed string.
function uuidLike(seed) {
  const h = sha1(seed);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// Replace values that depend on the wall clock / call stack.
function scrub(v, parentKey) {
  if (Array.isArray(v)) return v.map((x) => scrub(x));
  if (v && typeof v === "object") {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === "stack" && typeof x === "string") o[k] = "<stack>";
      else if (k === "timing" && x && typeof x === "object") o[k] = "<timing>";
      else o[k] = scrub(x, k);
    }
    return o;
  }
  return v;
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------- fake event API --
const fakeApi = {
  counter: 0,
  received: [], // events posted to /e/:key in the current scenario
  unexpected: [],
  reset() {
    this.counter = 0;
    this.received = [];
  },
};

const apiServer = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url, "http://x");
    const m = url.pathname.match(/^\/e\/([^/]+)$/);
    if (req.method === "POST" && m) {
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        res.end('{"error":"invalid json","status":400}');
        return;
      }
      const evts = Array.isArray(parsed) ? parsed : [parsed];
      const ids = evts.map(() => `fixture-event-${fakeApi.counter++}`);
      evts.forEach((e, i) => fakeApi.received.push({ key: decodeURIComponent(m[1]), id: ids[i], event: e }));
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ids, status: 200 }));
      return;
    }
    fakeApi.unexpected.push(`${req.method} ${req.url}`);
    console.error(`[fake-api] unexpected request: ${req.method} ${req.url}`);
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":"not served by the recorder","status":404}');
  });
});

// -------------------------------------------------------------- the child --
let child = null;
let childLog = "";
let appBase = "";
let apiBaseUrl = "";

async function startApp(apiBase) {
  const port = await freePort();
  appBase = `http://127.0.0.1:${port}`;
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("INNGEST_")) delete env[k];
  Object.assign(env, {
    PORT: String(port),
    INNGEST_DEV: "1",
    INNGEST_BASE_URL: apiBase,
    INNGEST_EVENT_KEY: EVENT_KEY,
    FIXTURE_APP_ID: APP_ID,
  });
  child = spawn(process.execPath, [path.join(here, "fixture-app.mjs")], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (d) => (childLog += d));
  child.stderr.on("data", (d) => (childLog += d));
  child.on("exit", (code, sig) => {
    childLog += `\n[child exited code=${code} signal=${sig}]\n`;
    child = null;
  });
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (!child) throw new Error(`fixture app exited early:\n${childLog}`);
    try {
      const r = await fetch(`${appBase}/health`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
    } catch {}
    await sleepMs(100);
  }
  throw new Error(`fixture app did not start:\n${childLog}`);
}

function stopApp() {
  if (child) {
    try {
      child.kill("SIGKILL");
    } catch {}
    child = null;
  }
}
process.on("exit", stopApp);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    stopApp();
    process.exit(130);
  });
}

// ------------------------------------------------------------- recording --
let exchanges = [];

async function exchange(label, { method, query = "", headers = {}, body = "" }) {
  const url = `${appBase}/api/inngest${query ? `?${query}` : ""}`;
  const init = { method, headers, signal: AbortSignal.timeout(CALL_TIMEOUT_MS) };
  if (method !== "GET" && method !== "HEAD") init.body = body;
  const r = await fetch(url, init);
  const text = await r.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  const keptHeaders = {};
  for (const h of KEEP_RESPONSE_HEADERS) {
    const v = r.headers.get(h);
    if (v !== null) keptHeaders[h] = v;
  }
  const rec = {
    label,
    request: { method, path: "/api/inngest", query, headers, body },
    response: { status: r.status, headers: keptHeaders, body: scrub(parsed) },
  };
  exchanges.push(rec);
  return { status: r.status, headers: keptHeaders, body: parsed, rec };
}

function event(name, data, seed, extra = {}) {
  return { data, id: ulidLike(`event:${seed}`), name, ts: BASE_TS, user: {}, ...extra };
}

// Error as the server stores it (state.UserError): name, message, stack, data,
// noRetry, cause — TS's `__serialized` marker is dropped. Stack scrubbed so
// request bodies are reproducible.
function storedError(err) {
  const out = {};
  for (const k of ["name", "message", "stack", "data", "noRetry", "cause"]) {
    if (err && err[k] !== undefined) out[k] = k === "stack" ? "<stack>" : err[k];
  }
  return out;
}

function summarise(res) {
  if (res.status === 206 && Array.isArray(res.body)) {
    return `206 ${res.body.map((o) => `${o.op} '${o.displayName ?? o.name ?? o.id}'`).join(", ")}`;
  }
  if (res.status === 200) return `200 completes`;
  const msg = res.body && typeof res.body === "object" ? res.body.message ?? res.body.error : undefined;
  return `${res.status}${msg ? ` '${msg}'` : ""}${res.headers["x-inngest-no-retry"] ? ` (no-retry ${res.headers["x-inngest-no-retry"]})` : ""}`;
}

/**
 * Play the executor for one run of `fn` until it completes or fails.
 * opts: { events, maxAttempts, runSeed, onEvent(op) for WaitForEvent,
 *         firstCallOnly }
 */
async function runFunction(fn, opts) {
  const fnSlug = `${APP_ID}-${fn}`;
  const events = opts.events;
  const runId = ulidLike(`run:${opts.runSeed}`);
  const fnUuid = uuidLike(`fn:${fnSlug}`);
  const qiId = uuidLike(`qi:${opts.runSeed}`);
  const maxAttempts = opts.maxAttempts ?? 5;
  const steps = {};
  const stack = [];
  let version = -1;
  let die = false;
  let callNo = 0;

  const call = async (stepId, attempt, what) => {
    const body = canonical({
      ctx: {
        attempt,
        disable_immediate_execution: die,
        env: "",
        fn_id: fnUuid,
        max_attempts: maxAttempts,
        qi_id: qiId,
        request_id: ulidLike(`req:${opts.runSeed}:${callNo++}`),
        run_id: runId,
        stack: { current: stack.length, stack: [...stack] },
        step_id: "step",
        use_api: false,
      },
      event: events[0],
      events,
      steps,
      use_api: false,
      version,
    });
    const headers = {
      "content-type": "application/json",
      "x-run-id": runId,
      "x-inngest-step-id": stepId,
      "x-inngest-req-version": String(version),
    };
    const query = `fnId=${encodeURIComponent(fnSlug)}&stepId=${encodeURIComponent(stepId)}`;
    const res = await exchange("", { method: "POST", query, headers, body });
    res.rec.label = `${fn}: ${what} (attempt ${attempt}) -> ${summarise(res)}`;
    const v = res.headers["x-inngest-req-version"];
    if (v !== undefined && (res.status === 200 || res.status === 206)) {
      const n = Number(v);
      if (Number.isFinite(n)) version = n;
    }
    return res;
  };

  const memo = (id, value) => {
    steps[id] = value;
    stack.push(id);
  };

  // Drive one "queue item": the call plus its retries. Returns the final res.
  const drive = async (stepId, what) => {
    let attempt = 0;
    for (;;) {
      const res = await call(stepId, attempt, what);
      const noRetry = res.headers["x-inngest-no-retry"] === "true";
      if (res.status === 206 && Array.isArray(res.body) && res.body.length === 1 && res.body[0].op === "StepError") {
        if (!noRetry && attempt + 1 < maxAttempts) {
          attempt++;
          continue;
        }
        // the server converts a final / no-retry StepError into StepFailed
        return { ...res, convertedFailed: true };
      }
      if (res.status >= 500 && !noRetry && attempt + 1 < maxAttempts) {
        attempt++;
        continue;
      }
      return res;
    }
  };

  let what = "discovery";
  let stepId = "step";
  for (let guard = 0; guard < 50; guard++) {
    const res = await drive(stepId, what);
    if (opts.firstCallOnly) return { status: "stopped", res };
    if (res.status === 200) return { status: "completed", result: res.body, runId, events };
    if (res.status !== 206) {
      return { status: "failed", error: res.body, res, runId, events };
    }
    const ops = res.body;
    if (!Array.isArray(ops)) throw new Error(`206 body is not an array: ${JSON.stringify(ops)}`);
    if (ops.length > 1) die = true;
    const planned = [];
    for (const op of ops) {
      switch (op.op) {
        case "StepRun":
          memo(op.id, { data: op.data ?? null });
          break;
        case "StepError":
        case "StepFailed":
          memo(op.id, { error: storedError(op.error) });
          break;
        case "Sleep":
          memo(op.id, null);
          break;
        case "WaitForEvent":
          memo(op.id, opts.onWait ? opts.onWait(op) : null);
          break;
        case "InvokeFunction": {
          const r = await opts.onInvoke(op, runId);
          memo(op.id, r.status === "completed" ? { data: r.result } : { error: storedError(r.error) });
          break;
        }
        case "StepPlanned":
          planned.push(op);
          break;
        case "RunComplete":
          return { status: "completed", result: op.data, runId, events };
        default:
          throw new Error(`unsupported op ${op.op}`);
      }
    }
    for (const op of planned) {
      const r = await drive(op.id, `targeted call for '${op.displayName ?? op.name}'`);
      if (r.status !== 206 || !Array.isArray(r.body) || r.body.length !== 1) {
        throw new Error(`targeted call for ${op.id} answered ${r.status}: ${JSON.stringify(r.body)}`);
      }
      const o = r.body[0];
      if (o.op === "StepRun") memo(o.id, { data: o.data ?? null });
      else if (o.op === "StepError" || o.op === "StepFailed") memo(o.id, { error: storedError(o.error) });
      else throw new Error(`targeted call answered op ${o.op}`);
    }
    if (planned.length > 0 && version >= 2) die = false; // parallel group finished
    what = "discovery";
    stepId = "step";
  }
  throw new Error(`run of ${fn} did not finish`);
}

function expectEq(scn, what, got, want) {
  if (canonical(got) !== canonical(want)) {
    throw new Error(`${scn}: ${what}: got ${canonical(got)}, want ${canonical(want)}`);
  }
}

// Child runs for step.invoke: the server's inngest/function.invoked event.
function invokeHandler(scn) {
  return async (op, parentRunId) => {
    const payload = op.opts?.payload ?? {};
    const fnId = op.opts?.function_id;
    const prefix = `${APP_ID}-`;
    const childFn = fnId.startsWith(prefix) ? fnId.slice(prefix.length) : fnId;
    const ev = {
      data: {
        ...(payload.data ?? {}),
        _inngest: {
          correlation_id: `${parentRunId}.${op.id}`,
          expire: 1791536000000,
          fn_id: fnId,
          gid: uuidLike(`gid:${scn}`),
          name: op.name ?? op.displayName,
          source_app_id: uuidLike(`app:${APP_ID}`),
          source_fn_id: uuidLike(`fn:${scn}-parent`),
          source_fn_v: 1,
        },
      },
      id: ulidLike(`event:${scn}:invoked`),
      name: "inngest/function.invoked",
      ts: BASE_TS + 1000,
      user: payload.user ?? {},
    };
    return runFunction(childFn, { events: [ev], runSeed: `${scn}:child` });
  };
}

// ---------------------------------------------------------------- scenarios --
const scenarios = [];
const scenario = (name, description, fn) => scenarios.push({ name, description, fn });

const simple = (scn, fn, evName, data, want, extra = {}) =>
  async () => {
    const r = await runFunction(fn, { events: [event(evName, data, scn)], runSeed: scn, ...extra });
    expectEq(scn, "result", r.result, want);
    return r;
  };

scenario("introspection", "Unsigned GET introspection of the fixture app in dev mode.", async () => {
  await exchange("GET introspection (unsigned, dev mode)", { method: "GET", headers: {} });
});

scenario(
  "sync-in-band",
  "In-band sync: a PUT with X-Inngest-Sync-Kind: in_band and a signature over the body; the SDK answers with its whole configuration in the response body.",
  async () => {
    const body = canonical({ url: "http://127.0.0.1:3000/api/inngest" });
    const t = "1700000000";
    const key = SIGNING_KEY.replace(/^signkey-\w+-/, "");
    const s = crypto.createHmac("sha256", key).update(body + t).digest("hex");
    await exchange("PUT in-band sync (dev server kind, signed)", {
      method: "PUT",
      headers: {
        "content-type": "application/json",
        "x-inngest-server-kind": "dev",
        "x-inngest-signature": `t=${t}&s=${s}`,
        "x-inngest-sync-kind": "in_band",
      },
      body,
    });
  },
);

scenario("errors", "Requests the serve handler must reject: POST with an unknown fnId, POST whose body is not JSON, and an unsupported method (PATCH).", async () => {
  const runId = ulidLike("run:errors");
  const ev = event("tests/function.test", {}, "errors");
  const body = canonical({
    ctx: {
      attempt: 0, disable_immediate_execution: false, env: "", fn_id: uuidLike("fn:unknown"),
      max_attempts: 5, qi_id: uuidLike("qi:errors"), request_id: ulidLike("req:errors:0"),
      run_id: runId, stack: { current: 0, stack: [] }, step_id: "step", use_api: false,
    },
    event: ev, events: [ev], steps: {}, use_api: false, version: -1,
  });
  const headers = {
    "content-type": "application/json",
    "x-run-id": runId,
    "x-inngest-step-id": "step",
    "x-inngest-req-version": "-1",
  };
  let r = await exchange("", { method: "POST", query: "fnId=conformance-fixture-does-not-exist&stepId=step", headers, body });
  r.rec.label = `POST with an unknown fnId -> ${summarise(r)}`;
  // inngest 4.24.0 JSON.parses the body outside its error handling: the
  // rejection is unhandled and the whole node process exits, so there is no
  // HTTP response to record. Record what happened and restart the app.
  const badReq = {
    method: "POST",
    query: "fnId=conformance-fixture-test-suite-simple-fn&stepId=step",
    headers,
    body: "this is {not json",
  };
  try {
    r = await exchange("", badReq);
    r.rec.label = `POST whose body is not JSON -> ${summarise(r)}`;
  } catch (err) {
    for (let i = 0; i < 50 && child; i++) await sleepMs(100);
    const crashed = !child;
    exchanges.push({
      label: "POST whose body is not JSON -> no HTTP response",
      request: { method: badReq.method, path: "/api/inngest", query: badReq.query, headers: badReq.headers, body: badReq.body },
      response: {
        status: null,
        headers: {},
        body: null,
        note: crashed
          ? "No response: the TS SDK's JSON.parse of the body throws outside its error handling; the unhandled rejection terminates the node process (SyntaxError: Unexpected token). A comparator should expect a non-2xx answer from other SDKs and must not treat this as a status to reproduce."
          : `No response: ${err.message}`,
      },
    });
    if (crashed) {
      childLog = "";
      await startApp(apiBaseUrl);
    }
  }
  r = await exchange("", { method: "PATCH", query: "fnId=conformance-fixture-test-suite-simple-fn&stepId=step", headers: { "content-type": "application/json" }, body: "{}" });
  r.rec.label = `PATCH (unsupported method) -> ${summarise(r)}`;
});

scenario("basic-invoke", "test-suite-simple-fn: one discovery call completes with 200.", simple("basic-invoke", "test-suite-simple-fn", "tests/function.test", {}, { name: "tests/function.test", body: "ok" }));

scenario("steps-serial", "test-suite-step-test: StepRun 'first step', Sleep 2s, StepRun 'second step', then 200.", simple("steps-serial", "test-suite-step-test", "tests/step.test", {}, { name: "tests/step.test", body: "ok" }));

scenario("retry-basic", "test-suite-retry-test: the step fails once (StepError, retried with attempt 1), then the function throws once (500, retried with attempt 1) and completes.", simple("retry-basic", "test-suite-retry-test", "tests/retry.test", {}, { name: "tests/retry.test", body: "ok" }));

scenario("cancel-basic", "test-suite-cancel-test: only the first call, which reports the 10s Sleep (cancellation happens in the server).", async () => {
  await runFunction("test-suite-cancel-test", {
    events: [event("tests/cancel.test", { request_id: "123" }, "cancel-basic")],
    runSeed: "cancel-basic",
    firstCallOnly: true,
  });
});

scenario("wait-for-event-basic", "test-suite-wait-for-event: WaitForEvent 'test/resume', resumed with the matching event (memoized as the whole event object).", async () => {
  const scn = "wait-for-event-basic";
  const r = await runFunction("test-suite-wait-for-event", {
    events: [event("tests/wait.test", { id: "123" }, scn)],
    runSeed: scn,
    onWait: () => event("test/resume", { id: "123", resume: true }, `${scn}:resume`, { ts: BASE_TS + 5000 }),
  });
  expectEq(scn, "result", r.result, { result: { id: "123", resume: true } });
});

scenario("wait-for-event-timeout", "wait-for-event-timeout: WaitForEvent 'conformance/never.sent' times out (memoized as null).", async () => {
  const scn = "wait-for-event-timeout";
  const r = await runFunction("wait-for-event-timeout", {
    events: [event("conformance/waittimeout.test", { id: "abc" }, scn)],
    runSeed: scn,
    onWait: () => null,
  });
  expectEq(scn, "result", r.result, { timed_out: true });
});

scenario("parallel-steps", "parallel-steps: three StepPlanned ops in one response, one targeted call each (disable_immediate_execution true), then discovery runs 'after-parallel'.", simple("parallel-steps", "parallel-steps", "conformance/parallel.test", {}, { results: ["a", "b", "c"], joined: "a+b+c" }));

scenario("step-send-event", "send-event: step.sendEvent POSTs to the (fake) event API and returns its ids; then a send-event-receiver run on the sent event.", async () => {
  const scn = "step-send-event";
  const r = await runFunction("send-event", { events: [event("conformance/sendevent.test", { value: "hello" }, scn)], runSeed: scn });
  expectEq(scn, "result", r.result, { sent_ids: ["fixture-event-0"] });
  const got = fakeApi.received.find((x) => x.event.name === "conformance/sendevent.sent");
  if (!got) throw new Error(`${scn}: event API did not receive conformance/sendevent.sent`);
  if (got.key !== EVENT_KEY) throw new Error(`${scn}: event sent with key ${got.key}`);
  const ev = { data: got.event.data ?? {}, id: got.id, name: got.event.name, ts: BASE_TS + 1000, user: {} };
  const r2 = await runFunction("send-event-receiver", { events: [ev], runSeed: `${scn}:receiver` });
  expectEq(scn, "receiver result", r2.result, { received: "hello" });
});

scenario("step-invoke", "invoke-parent (n=21) reports InvokeFunction; invoke-child runs on inngest/function.invoked; the parent resumes with {data: child result}.", async () => {
  const scn = "step-invoke";
  const r = await runFunction("invoke-parent", {
    events: [event("conformance/invoke.test", { n: 21 }, scn)],
    runSeed: scn,
    onInvoke: invokeHandler(scn),
  });
  expectEq(scn, "result", r.result, { child: { doubled: 42 } });
});

scenario("sleep-until", "sleep-until: Sleep until 2030-01-01T00:00:00.000Z, then 'after-sleep-until' runs.", simple("sleep-until", "sleep-until", "conformance/sleepuntil.test", { until: "2030-01-01T00:00:00.000Z" }, { after: "woke" }));

scenario("non-retriable", "non-retriable: the function throws NonRetriableError -> 400 with X-Inngest-No-Retry: true.", async () => {
  const scn = "non-retriable";
  const r = await runFunction("non-retriable", { events: [event("conformance/nonretriable.test", {}, scn)], runSeed: scn });
  if (r.status !== "failed" || r.res.status !== 400) throw new Error(`${scn}: expected a 400 failure`);
});

scenario("non-retriable-step", "non-retriable-step: the step throws NonRetriableError (reported once), its error is memoized, the uncaught step error fails the function (400, no retry).", async () => {
  const scn = "non-retriable-step";
  const r = await runFunction("non-retriable-step", { events: [event("conformance/nonretriable.step.test", {}, scn)], runSeed: scn });
  if (r.status !== "failed" || r.res.status !== 400) throw new Error(`${scn}: expected a 400 failure`);
});

scenario("step-error-final-attempt", "step-error-final (retries 1, max_attempts 2): the step fails at attempt 0 (StepError) and attempt 1 (final), the memoized error is caught by the function.", simple("step-error-final-attempt", "step-error-final", "conformance/steperror.test", {}, { caught: true, name: "Error", message: "step always fails" }, { maxAttempts: 2 }));

scenario("retry-after", "retry-after: attempt 0 throws RetryAfterError (500 with Retry-After), attempt 1 completes.", simple("retry-after", "retry-after", "conformance/retryafter.test", {}, { attempt: 1 }));

scenario("cron-trigger", "cron-fn: a scheduled tick (inngest/scheduled.timer) completes.", simple("cron-trigger", "cron-fn", "inngest/scheduled.timer", { cron: "0 0 1 1 *", fireAt: "2030-01-01T00:00:00Z", scheduledAt: "2030-01-01T00:00:00Z" }, { cron: true, name: "inngest/scheduled.timer" }));

scenario("repeated-steps", "repeated-steps: the same step id three times -> hashes of 'item', 'item:1', 'item:2'.", async () => {
  const scn = "repeated-steps";
  const r = await runFunction("repeated-steps", { events: [event("conformance/repeat.test", {}, scn)], runSeed: scn });
  expectEq(scn, "result", r.result, { items: [0, 1, 2] });
  const ids = exchanges.flatMap((x) => (Array.isArray(x.response.body) ? x.response.body.map((o) => o.id) : []));
  expectEq(scn, "step ids", ids, [sha1("item"), sha1("item:1"), sha1("item:2")]);
});

const TYPED_EVENT_DATA = {
  名字: "李四",
  greeting: "你好，世界",
  quote: 'say "hi"',
  backslash: "C:\\path\\to",
  tab: "a\tb",
  newline: "line1\nline2",
  mixed: "\"\\\t\n 中文",
  n: 7,
  f: 0.5,
  yes: false,
  nothing: null,
};
scenario("typed-result", "typed-result: a step returns typed JSON (Chinese keys/values, ints, floats, bools, null), a sleep ends the call, and the result echoes event data containing characters JSON must escape.", simple("typed-result", "typed-result", "conformance/typed.test", TYPED_EVENT_DATA, {
  step: { 名字: "张三", amount: 1234.5, count: 3, ok: true, none: null, list: [1, "二", 2.5], nested: { k: [{ a: 1 }] } },
  echo: TYPED_EVENT_DATA,
}));

scenario("on-failure-handler", "on-failure-fn (retries 0) fails with NonRetriableError 'boom' (400); its failure handler then runs on the inngest/function.failed event.", async () => {
  const scn = "on-failure-handler";
  const r = await runFunction("on-failure-fn", { events: [event("conformance/onfailure.test", { x: 1 }, scn)], runSeed: scn, maxAttempts: 1 });
  if (r.status !== "failed") throw new Error(`${scn}: expected the run to fail`);
  const err = r.error ?? {};
  const failed = {
    data: {
      _inngest: { status: "Failed" },
      error: {
        error: err.error ?? err.name ?? "Error",
        message: err.message ?? "",
        name: err.name ?? "Error",
        stack: "<stack>",
      },
      event: r.events[0],
      events: r.events,
      function_id: `${APP_ID}-on-failure-fn`,
      run_id: r.runId,
    },
    id: r.runId,
    name: "inngest/function.failed",
    ts: BASE_TS + 2000,
    user: {},
  };
  // TS syncs the failure handler with retries.attempts = 1 -> max_attempts 2.
  const h = await runFunction("on-failure-fn-failure", { events: [failed], runSeed: `${scn}:handler`, maxAttempts: 2 });
  expectEq(scn, "handler result", h.result, { handled: true, message: "boom" });
});

scenario("batch-events", "batch-fn: one run whose call carries 3 events (n=1,2,3) in `events` and the first in `event`.", async () => {
  const scn = "batch-events";
  const evs = [1, 2, 3].map((n) => event("conformance/batch.test", { n }, `${scn}:${n}`, { ts: BASE_TS + n }));
  const r = await runFunction("batch-fn", { events: evs, runSeed: scn });
  expectEq(scn, "result", r.result, { count: 3, ns: [1, 2, 3] });
});

scenario("multi-trigger", "multi-trigger: a run from conformance/multi.a and one from conformance/multi.b (ok: true).", async () => {
  const scn = "multi-trigger";
  const a = await runFunction("multi-trigger", { events: [event("conformance/multi.a", {}, `${scn}:a`)], runSeed: `${scn}:a` });
  expectEq(scn, "multi.a", a.result, { name: "conformance/multi.a" });
  const b = await runFunction("multi-trigger", { events: [event("conformance/multi.b", { ok: true }, `${scn}:b`)], runSeed: `${scn}:b` });
  expectEq(scn, "multi.b", b.result, { name: "conformance/multi.b" });
});

scenario("flow-control", "One run each of flow-control-config (retries 7 -> max_attempts 8) and flow-control-idempotency.", async () => {
  const scn = "flow-control";
  const ev = event("conformance/config.test", { id: "k1", tenant: "t1", user: "u1", priority: 0 }, scn);
  const a = await runFunction("flow-control-config", { events: [ev], runSeed: `${scn}:config`, maxAttempts: 8 });
  expectEq(scn, "config", a.result, { ok: true });
  const b = await runFunction("flow-control-idempotency", { events: [ev], runSeed: `${scn}:idempotency` });
  expectEq(scn, "idempotency", b.result, { ok: true });
});

// -------------------------------------------------------------------- main --
async function main() {
  await new Promise((r) => apiServer.listen(0, "127.0.0.1", r));
  apiBaseUrl = `http://127.0.0.1:${apiServer.address().port}`;
  await startApp(apiBaseUrl);
  const recordedWith = `inngest ${sdkVersion} (TypeScript SDK), node ${process.versions.node}`;
  let failed = 0;
  for (const s of scenarios) {
    if (only && !only.has(s.name)) continue;
    exchanges = [];
    fakeApi.reset();
    try {
      await s.fn();
    } catch (err) {
      failed++;
      console.error(`FAIL ${s.name}: ${err.stack || err}`);
      if (!child) {
        console.error(`--- fixture app output ---\n${childLog}`);
        break;
      }
      continue;
    }
    const file = path.join(outDir, `${s.name}.json`);
    const doc = {
      scenario: s.name,
      description: s.description,
      recorded_with: recordedWith,
      app_id: APP_ID,
      exchanges,
    };
    fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`ok   ${s.name} (${exchanges.length} exchanges)`);
  }
  if (fakeApi.unexpected.length) {
    console.error(`the app called API routes the recorder does not serve: ${fakeApi.unexpected.join(", ")}`);
    failed++;
  }
  return failed;
}

let code = 1;
try {
  code = (await main()) ? 1 : 0;
} catch (err) {
  console.error(err.stack || err);
  if (childLog) console.error(`--- fixture app output ---\n${childLog}`);
  code = 1;
} finally {
  stopApp();
  apiServer.close();
}
process.exit(code);
