// Conformance fixture app (docs: /work/shared/docs/conformance-fixture.md §2)
// written against the official Inngest TypeScript SDK, used only to record
// reference protocol exchanges (see ../README.md).
//
// Standalone:   PORT=3100 INNGEST_DEV=1 node fixture-app.mjs
// As a module:  import { createClient, buildFunctions, startFixtureServer } from "./fixture-app.mjs"
//
// Environment: PORT (default 3000), FIXTURE_APP_ID (default "conformance-fixture"),
// INNGEST_DEV, INNGEST_BASE_URL / INNGEST_API_BASE_URL / INNGEST_EVENT_API_BASE_URL,
// INNGEST_EVENT_KEY, INNGEST_SIGNING_KEY (all read by the SDK itself).

import http from "node:http";
import { pathToFileURL } from "node:url";
import { Inngest, NonRetriableError, RetryAfterError, StepError } from "inngest";
import { serve } from "inngest/node";

export const DEFAULT_APP_ID = "conformance-fixture";
export const SERVE_PATH = "/api/inngest";

/**
 * Creates the SDK client.
 *
 * - checkpointing is switched off (it is on by default in inngest 4.x): every
 *   call then reports at most one newly executed step (206) or completes (200),
 *   as the classic executor protocol expects, and nothing is POSTed to
 *   /v1/checkpoint/...
 * - when no INNGEST_*BASE_URL variable is set, the client is pointed at
 *   http://127.0.0.1:8288 so it can never reach a real Inngest host.
 */
export function createClient({ appId = process.env.FIXTURE_APP_ID || DEFAULT_APP_ID } = {}) {
  // FIXTURE_CHECKPOINTING=1 keeps the SDK's default (checkpointing on), for executor tests.
  const opts = { id: appId, checkpointing: process.env.FIXTURE_CHECKPOINTING === "1" ? undefined : false };
  if (opts.checkpointing === undefined) delete opts.checkpointing;
  const env = process.env;
  if (!env.INNGEST_BASE_URL && !env.INNGEST_API_BASE_URL && !env.INNGEST_EVENT_API_BASE_URL) {
    opts.baseUrl = "http://127.0.0.1:8288";
  }
  return new Inngest(opts);
}

/** Builds every function of conformance-fixture.md §2.1, §2.2 and §2.3. */
export function buildFunctions(inngest) {
  // Per-run state (keyed by ctx.runId), so scenarios can be repeated against
  // the same process.
  const retryState = new Map();
  const runState = (runId) => {
    let s = retryState.get(runId);
    if (!s) {
      s = { stepExecutions: 0, pastStep: 0 };
      retryState.set(runId, s);
    }
    return s;
  };

  const fns = [];
  const fn = (opts, handler) => {
    const f = inngest.createFunction(opts, handler);
    fns.push(f);
    return f;
  };

  // ---- §2.1: the server's Go conformance fixture ------------------------
  fn({ id: "test-suite-simple-fn", triggers: [{ event: "tests/function.test" }] }, async ({ event }) => {
    return { name: event.name, body: "ok" };
  });

  fn({ id: "test-suite-step-test", triggers: [{ event: "tests/step.test" }] }, async ({ event, step }) => {
    const first = await step.run("first step", () => "first step");
    await step.sleep("sleep", "2s");
    await step.run("second step", () => ({ first, second: true }));
    return { name: event.name, body: "ok" };
  });

  fn({ id: "test-suite-retry-test", triggers: [{ event: "tests/retry.test" }] }, async ({ event, step, runId }) => {
    const st = runState(runId);
    await step.run("first step", () => {
      st.stepExecutions += 1;
      if (st.stepExecutions === 1) throw new Error("broken");
      return "yes: 2";
    });
    st.pastStep += 1;
    if (st.pastStep === 1) throw new Error("broken func");
    return { name: event.name, body: "ok" };
  });

  fn(
    {
      id: "test-suite-cancel-test",
      triggers: [{ event: "tests/cancel.test" }],
      cancelOn: [{ event: "cancel/please", if: "async.data.request_id == event.data.request_id" }],
    },
    async ({ event, step }) => {
      await step.sleep("sleep", "10s");
      await step.run("After the sleep", () => "This should be cancelled if a matching cancel event is received");
      return { name: event.name, body: "ok" };
    },
  );

  fn({ id: "test-suite-wait-for-event", triggers: [{ event: "tests/wait.test" }] }, async ({ step }) => {
    const got = await step.waitForEvent("wait", {
      event: "test/resume",
      if: "async.data.resume == true && async.data.id == event.data.id",
      timeout: "10s",
    });
    if (got == null) return {};
    return { result: got.data };
  });

  // ---- §2.2: protocol features ------------------------------------------
  fn({ id: "parallel-steps", triggers: [{ event: "conformance/parallel.test" }] }, async ({ step }) => {
    const results = await Promise.all([
      step.run("parallel-a", () => "a"),
      step.run("parallel-b", () => "b"),
      step.run("parallel-c", () => "c"),
    ]);
    const joined = await step.run("after-parallel", () => results.join("+"));
    return { results, joined };
  });

  fn({ id: "send-event", triggers: [{ event: "conformance/sendevent.test" }] }, async ({ event, step }) => {
    const sent = await step.sendEvent("send-it", {
      name: "conformance/sendevent.sent",
      data: { value: event.data.value },
    });
    return { sent_ids: sent.ids };
  });

  fn({ id: "send-event-receiver", triggers: [{ event: "conformance/sendevent.sent" }] }, async ({ event }) => {
    return { received: event.data.value };
  });

  const invokeChild = fn({ id: "invoke-child", triggers: [{ event: "conformance/invoke.child" }] }, async ({ event }) => {
    return { doubled: event.data.n * 2 };
  });

  fn({ id: "invoke-parent", triggers: [{ event: "conformance/invoke.test" }] }, async ({ event, step }) => {
    const child = await step.invoke("call-child", { function: invokeChild, data: { n: event.data.n } });
    return { child };
  });

  fn({ id: "sleep-until", triggers: [{ event: "conformance/sleepuntil.test" }] }, async ({ event, step }) => {
    await step.sleepUntil("wait-until", event.data.until);
    const after = await step.run("after-sleep-until", () => "woke");
    return { after };
  });

  fn({ id: "wait-for-event-timeout", triggers: [{ event: "conformance/waittimeout.test" }] }, async ({ step }) => {
    const got = await step.waitForEvent("wait-timeout", {
      event: "conformance/never.sent",
      if: "async.data.id == event.data.id",
      timeout: "5s",
    });
    return { timed_out: got == null };
  });

  fn({ id: "non-retriable", triggers: [{ event: "conformance/nonretriable.test" }] }, async () => {
    throw new NonRetriableError("do not retry me");
  });

  fn({ id: "non-retriable-step", triggers: [{ event: "conformance/nonretriable.step.test" }] }, async ({ step }) => {
    await step.run("nr-step", () => {
      throw new NonRetriableError("step says do not retry");
    });
    return { unreachable: true };
  });

  fn({ id: "step-error-final", triggers: [{ event: "conformance/steperror.test" }], retries: 1 }, async ({ step }) => {
    try {
      await step.run("always-fails", () => {
        throw new Error("step always fails");
      });
      return { caught: false };
    } catch (e) {
      if (e instanceof StepError) return { caught: true, name: e.name, message: e.message };
      throw e;
    }
  });

  fn({ id: "retry-after", triggers: [{ event: "conformance/retryafter.test" }] }, async ({ attempt }) => {
    if (attempt === 0) throw new RetryAfterError("slow down", 7000); // 7 s (number = ms)
    return { attempt };
  });

  fn({ id: "cron-fn", triggers: [{ cron: "0 0 1 1 *" }] }, async ({ event }) => {
    return { cron: true, name: event.name };
  });

  fn({ id: "large-state", triggers: [{ event: "conformance/largestate.test" }] }, async ({ event, step }) => {
    const size = event.data.size;
    const a = await step.run("big-1", () => "1".repeat(size));
    await step.sleep("big-nap", "1s");
    const b = await step.run("big-2", () => "2".repeat(size));
    const c = await step.run("big-3", () => "3".repeat(size));
    return { lengths: [a.length, b.length, c.length], heads: [a[0], b[0], c[0]], marker: event.data.marker };
  });

  // ---- §2.3: SDK feature parity ------------------------------------------
  fn({ id: "repeated-steps", triggers: [{ event: "conformance/repeat.test" }] }, async ({ step }) => {
    const items = [];
    for (let i = 0; i < 3; i++) {
      items.push(await step.run("item", () => i));
    }
    return { items };
  });

  fn(
    {
      id: "flow-control-config",
      triggers: [{ event: "conformance/config.test" }],
      retries: 7,
      concurrency: [
        { limit: 2, key: "event.data.tenant" },
        { limit: 5, scope: "account", key: '"global"' },
      ],
      throttle: { limit: 10, period: "1m", key: "event.data.tenant", burst: 2 },
      rateLimit: { limit: 100, period: "1h", key: "event.data.user" },
      debounce: { period: "5s", key: "event.data.id", timeout: "1m" },
      priority: { run: "event.data.priority" },
      timeouts: { start: "10s", finish: "1h" },
    },
    async () => ({ ok: true }),
  );

  fn(
    { id: "flow-control-idempotency", triggers: [{ event: "conformance/config.test" }], idempotency: "event.data.id" },
    async () => ({ ok: true }),
  );

  fn(
    { id: "batch-fn", triggers: [{ event: "conformance/batch.test" }], batchEvents: { maxSize: 3, timeout: "5s" } },
    async ({ events }) => ({ count: events.length, ns: events.map((e) => e.data.n) }),
  );

  fn(
    { id: "singleton-fn", triggers: [{ event: "conformance/singleton.test" }], singleton: { key: "event.data.user", mode: "skip" } },
    async () => ({ ok: true }),
  );

  fn(
    {
      id: "on-failure-fn",
      triggers: [{ event: "conformance/onfailure.test" }],
      retries: 0,
      onFailure: async ({ event }) => ({ handled: true, message: event.data.error.message }),
    },
    async () => {
      throw new NonRetriableError("boom");
    },
  );

  fn(
    {
      id: "multi-trigger",
      triggers: [
        { event: "conformance/multi.a" },
        { event: "conformance/multi.b", if: "event.data.ok == true" },
        { cron: "TZ=Asia/Shanghai 0 9 * * 1-5" },
      ],
    },
    async ({ event }) => ({ name: event.name }),
  );

  fn({ id: "typed-result", triggers: [{ event: "conformance/typed.test" }] }, async ({ event, step }) => {
    const v = await step.run("typed", () => ({
      名字: "张三",
      amount: 1234.5,
      count: 3,
      ok: true,
      none: null,
      list: [1, "二", 2.5],
      nested: { k: [{ a: 1 }] },
    }));
    await step.sleep("typed-nap", "1s");
    return { step: v, echo: event.data };
  });

  // ---- flow control, driven by the executor ------------------------------
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  fn(
    {
      id: "debounce-fn",
      triggers: [{ event: "conformance/debounce.test" }],
      debounce: { period: "5s", key: "event.data.user", timeout: "20s" },
    },
    async ({ event, events }) => ({ n: event.data.n, count: events.length }),
  );

  fn(
    {
      id: "throttle-fn",
      triggers: [{ event: "conformance/throttle.test" }],
      throttle: { limit: 1, period: "10s", key: "event.data.user" },
    },
    async ({ event }) => ({ n: event.data.n }),
  );

  fn(
    {
      id: "ratelimit-fn",
      triggers: [{ event: "conformance/ratelimit.test" }],
      rateLimit: { limit: 2, period: "60s", key: "event.data.user" },
    },
    async ({ event }) => ({ n: event.data.n }),
  );

  fn(
    {
      id: "batch-keyed-fn",
      triggers: [{ event: "conformance/batchkeyed.test" }],
      batchEvents: { maxSize: 2, timeout: "5s", key: "event.data.user" },
    },
    async ({ events }) => ({ ns: events.map((e) => e.data.n) }),
  );

  fn(
    {
      id: "priority-fn",
      triggers: [{ event: "conformance/priority.test" }],
      concurrency: [{ limit: 1 }],
      priority: { run: "event.data.vip == true ? 100 : 0" },
    },
    async ({ event, step }) => {
      const at = await step.run("work", async () => {
        await sleep(600);
        return Date.now();
      });
      return { n: event.data.n, at };
    },
  );

  for (const id of ["concurrency-env-a", "concurrency-env-b"]) {
    fn(
      {
        id,
        triggers: [{ event: "conformance/envlimit.test" }],
        concurrency: [{ limit: 1, key: "event.data.group", scope: "env" }],
      },
      async ({ step }) =>
        step.run("work", async () => {
          const start = Date.now();
          await sleep(400);
          return { start, end: Date.now() };
        }),
    );
  }

  for (const [id, event, mode] of [
    ["singleton-skip-fn", "conformance/singleton.skip", "skip"],
    ["singleton-cancel-fn", "conformance/singleton.cancel", "cancel"],
  ]) {
    fn({ id, triggers: [{ event }], singleton: { key: "event.data.user", mode } }, async ({ event, step }) => {
      await step.waitForEvent("release", {
        event: "conformance/singleton.release",
        timeout: "1h",
        if: "async.data.user == event.data.user",
      });
      return { n: event.data.n };
    });
  }

  fn(
    {
      id: "cancel-timeout-fn",
      triggers: [{ event: "conformance/canceltimeout.test" }],
      cancelOn: [{ event: "conformance/canceltimeout.stop", if: "async.data.id == event.data.id", timeout: "60s" }],
    },
    async ({ step }) => {
      await step.sleep("nap", "1h");
      return { woke: true };
    },
  );

  return fns;
}

/** Starts the fixture HTTP server; resolves to the listening http.Server. */
export function startFixtureServer({
  port = Number(process.env.PORT || 3000),
  host = "127.0.0.1",
  appId,
} = {}) {
  const client = createClient({ appId });
  const handler = serve({ client, functions: buildFunctions(client) });
  const server = http.createServer((req, res) => {
    const path = (req.url || "/").split("?")[0];
    if (path === SERVE_PATH) return handler(req, res);
    if (path === "/health" && req.method === "GET") {
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end('{"status":"ok"}');
    }
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end('{"message":"not found"}');
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startFixtureServer();
  const { port, address } = server.address();
  console.log(`fixture app listening on http://${address}:${port}${SERVE_PATH}`);
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
