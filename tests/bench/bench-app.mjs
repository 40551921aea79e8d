// The benchmark's functions with the official TypeScript SDK on its plain Node http adapter:
// the same ids, triggers and steps as bench_service.cpp. Run from a folder where `inngest` is
// installed: PORT=3200 INNGEST_DEV=1 node bench-app.mjs

import http from "node:http";
import { Inngest } from "inngest";
import { serve } from "inngest/node";

const inngest = new Inngest({ id: "bench", checkpointing: false, baseUrl: "http://127.0.0.1:8288" });

const functions = [
  inngest.createFunction({ id: "bench-steps", triggers: [{ event: "bench/steps" }] }, async ({ event, step }) => {
    for (let i = 0; i <= event.data.n; i++) {
      await step.run(`s${i}`, () => i);
    }
    return "done";
  }),
  inngest.createFunction({ id: "bench-parallel", triggers: [{ event: "bench/parallel" }] }, async ({ step }) => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => step.run(`p${i}`, () => i)));
    return results.length;
  }),
  inngest.createFunction({ id: "bench-large", triggers: [{ event: "bench/large" }] }, async ({ step }) => {
    await step.run("big", () => "");
    await step.run("next", () => 1);
    return "done";
  }),
];

const handler = serve({ client: inngest, functions });
const server = http.createServer((req, res) => handler(req, res));
server.listen(Number(process.env.PORT || 3200), "127.0.0.1", () => {
  console.log(`bench app listening on http://127.0.0.1:${server.address().port}/api/inngest`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
