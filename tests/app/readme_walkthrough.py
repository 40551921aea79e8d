#!/usr/bin/env python3
"""Runs the README's riveredge-flow walk-through, line for line, against a fresh deployment.

The deployment is what scripts/dev starts (a private PostgreSQL cluster with password roles, a
private CUPS scheduler with the demo-pdf queue, the seal key, the secrets), on free ports, with
the executor in one of three places:

  embedded  the app's own executor (scripts/dev's default)
  dev       a separate `inngest-local -u <app>` process, the app given INNGEST_DEV=<its URL>,
            as users run the app beside `inngest dev -u`
  cloud     the same process with signing and event keys, the app given INNGEST_DEV=0, the keys
            and INNGEST_BASE_URL, as it runs beside Inngest Cloud

The README's shell blocks from "riveredge-flow in five curl lines" to "Security model" run in one
bash, unchanged except for ports, paths and the binary's location. Every curl line must answer
2xx (a line that depends on work an Inngest function has not finished yet is repeated, up to
30 s, until it does); afterwards the results the README promises are checked.

usage: readme_walkthrough.py MODE SOURCE_DIR APP_BINARY INNGEST_LOCAL_BINARY
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def walkthrough_script(readme):
    text = open(readme, encoding="utf-8").read()
    start = text.index("## riveredge-flow in five curl lines")
    end = text.index("## Security model")
    blocks = re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S)
    if len(blocks) < 6:
        raise SystemExit(f"expected the walk-through's shell blocks, found {len(blocks)}")
    return "\n".join(blocks)


# Each curl of the walk-through: the real curl, its status written to stderr's last line; a
# non-2xx answer is asked again (the README's lines follow asynchronous work) for up to 30 s.
PRELUDE = r"""
set -euo pipefail
curl() {
    local deadline=$((SECONDS + 30)) status err
    err="$(mktemp)"
    while :; do
        if command curl -sS -w '%{stderr}\n%{http_code}' "$@" 2>"$err"; then :; fi
        status="$(tail -n 1 "$err")"
        if [[ "$status" =~ ^2[0-9][0-9]$ ]]; then
            echo "  -> $status" >&2
            rm -f "$err"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            echo "walk-through line failed with $status: curl $*" | sed 's/Bearer [^ ]*/Bearer .../g' >&2
            cat "$err" >&2
            rm -f "$err"
            return 1
        fi
        sleep 0.3
    done
}
"""


class Deployment:
    def __init__(self, mode, source, app_binary, inngest_local):
        self.mode = mode
        self.source = source
        self.app_binary = app_binary
        self.inngest_local = inngest_local
        self.work = tempfile.mkdtemp(prefix=f"readme-{mode}-")
        self.pg_port = free_port()
        self.app_port = free_port()
        self.executor_port = free_port()
        self.processes = []
        self.logs = []

    def run(self, *argv, env=None, **kwargs):
        return subprocess.run(argv, check=True, cwd=self.source, env=env, **kwargs)

    def start_process(self, name, argv, env):
        log = open(os.path.join(self.work, name + ".log"), "w")
        self.logs.append(log.name)
        process = subprocess.Popen(argv, cwd=self.source, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def wait_ok(self, url, seconds=60):
        until = time.time() + seconds
        while time.time() < until:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"{url} did not answer 200 in {seconds} s")

    def secret(self, prefix, nbytes):
        return prefix + secrets.token_hex(nbytes)

    def start(self):
        env = dict(os.environ)
        env["PG_CLUSTER_FSYNC"] = "off"
        self.run("scripts/pg-cluster", "start", f"{self.work}/pg", str(self.pg_port), env=env)
        self.run("scripts/cups-server", "start", f"{self.work}/cups")
        pdf_uri = subprocess.run(["scripts/cups-server", "pdf-uri", f"{self.work}/cups"],
                                 cwd=self.source, check=True, capture_output=True,
                                 text=True).stdout.strip()
        socket_path = f"{self.work}/cups/sock/cups.sock"
        self.run("lpadmin", "-h", socket_path, "-p", "demo-pdf", "-E", "-v", pdf_uri, "-P",
                 "/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")
        seal_key = f"{self.work}/records_seal_key.pem"
        self.run("openssl", "genpkey", "-algorithm", "ed25519", "-out", seal_key,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        pg_url = (f"host=127.0.0.1 port={self.pg_port} dbname=riveredge "
                  f"passfile='{self.work}/pg/pgpass'")
        app_env = dict(os.environ)
        app_env.update({
            "RIVEREDGE_DATABASE_URL": pg_url + " user=riveredge",
            "RIVEREDGE_MIGRATION_DATABASE_URL": pg_url + " user=riveredge_owner",
            "RIVEREDGE_JWT_SECRET": self.secret("", 32),
            "RIVEREDGE_PORT": str(self.app_port),
            "RIVEREDGE_CUPS_SERVER": socket_path,
            "RIVEREDGE_RECORDS_SEAL_KEY": seal_key,
            "RIVEREDGE_METRICS_TOKEN": self.secret("", 24),
            "RIVEREDGE_OUTBOUND_NETWORKS": "127.0.0.0/8,::1/128",
            "RIVEREDGE_OUTBOUND_PORTS": "80,443,25,465,587,1024-65535",
        })
        for name in list(app_env):
            if name.startswith("INNGEST_"):
                del app_env[name]
        serve_url = f"http://127.0.0.1:{self.app_port}/api/inngest"
        self.executor_base = f"127.0.0.1:{self.executor_port}"
        if self.mode == "embedded":
            self.executor_key = self.secret("signkey-local-", 32)
            app_env.update({
                "RIVEREDGE_EXECUTOR_PORT": str(self.executor_port),
                "RIVEREDGE_EXECUTOR_SIGNING_KEY": self.executor_key,
                "RIVEREDGE_EXECUTOR_EVENT_KEY": self.secret("", 24),
            })
        else:
            argv = [self.inngest_local, "-u", serve_url, "--port", str(self.executor_port)]
            inngest_url = f"http://{self.executor_base}"
            if self.mode == "cloud":
                self.executor_key = self.secret("signkey-prod-", 32)
                event_key = self.secret("", 24)
                argv += ["--signing-key", self.executor_key, "--event-key", event_key]
                app_env.update({"INNGEST_DEV": "0", "INNGEST_SIGNING_KEY": self.executor_key,
                                "INNGEST_EVENT_KEY": event_key, "INNGEST_BASE_URL": inngest_url})
            else:
                self.executor_key = "dev-server-needs-no-key"
                app_env["INNGEST_DEV"] = inngest_url
            self.start_process("inngest-local", argv, dict(os.environ))
            self.wait_ok(inngest_url + "/health")
        self.app_env = app_env
        self.start_process("riveredge-flow", [self.app_binary, "serve"], app_env)
        self.wait_ok(f"http://127.0.0.1:{self.app_port}/readyz")
        if self.mode != "embedded":
            # inngest-local syncs the app once it answers (as `inngest dev -u` does).
            self.wait_for_log("inngest-local", "synced ")

    def wait_for_log(self, name, needle, seconds=60):
        path = os.path.join(self.work, name + ".log")
        until = time.time() + seconds
        while time.time() < until:
            if needle in open(path, encoding="utf-8", errors="replace").read():
                return
            time.sleep(0.2)
        raise SystemExit(f"{name} never logged {needle!r}")

    def token(self, user, roles=None):
        argv = [self.app_binary, "token", "--tenant", "demo", "--user", user]
        if roles:
            argv += ["--roles", roles]
        return subprocess.run(argv, check=True, capture_output=True, text=True,
                              env=self.app_env).stdout.strip()

    def get(self, path, token):
        request = urllib.request.Request(f"http://127.0.0.1:{self.app_port}{path}",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def eventually(self, what, path, token, predicate, seconds=30):
        until = time.time() + seconds
        last = None
        while time.time() < until:
            try:
                last = self.get(path, token)
                if predicate(last):
                    print(f"ok   {what}")
                    return
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}"
            time.sleep(0.3)
        raise SystemExit(f"FAIL {what}: last {path} was {json.dumps(last, ensure_ascii=False)[:500]}")

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        subprocess.run(["scripts/cups-server", "stop", f"{self.work}/cups"], cwd=self.source,
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["scripts/pg-cluster", "stop", f"{self.work}/pg"], cwd=self.source,
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def dump_logs(self):
        for path in self.logs:
            print(f"---- {path} (last 40 lines)", file=sys.stderr)
            with open(path, encoding="utf-8", errors="replace") as log:
                print("".join(log.readlines()[-40:]), file=sys.stderr)


WALKTHROUGH_FUNCTIONS = ["messages-deliver", "scripts-run", "approvals-instance",
                         "records-archive", "print-render", "print-job", "workflows-execution"]


def check_dashboard(d):
    """The executor's dashboard shows the walk-through's runs: through its API always, and in
    headless Chromium (screenshots beside the test) where the dashboard test installed
    playwright-core."""
    headers = {"Authorization": f"Bearer {d.executor_key}"}
    request = urllib.request.Request(
        f"http://{d.executor_base}/_dashboard/api/runs?limit=200", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        listed = json.load(response)
    seen = {run["function_id"] for run in listed["runs"]}
    missing = [f for f in WALKTHROUGH_FUNCTIONS if not any(s.endswith(f) for s in seen)]
    if missing:
        raise SystemExit(f"FAIL the dashboard lists no run of {missing} (it lists {sorted(seen)})")
    print(f"ok   the dashboard's API lists the walk-through's {listed['total']} runs")
    shot_dir = os.environ.get("DASHBOARD_TEST_DIR", "")
    script = os.path.join(shot_dir, "walkthrough_shot.mjs")
    if d.mode != "embedded" or not os.path.exists(os.path.join(shot_dir, "node_modules")):
        return
    result = subprocess.run(["node", script, f"http://{d.executor_base}", d.executor_key,
                             os.environ.get("DASHBOARD_SHOT_DIR", d.work)] +
                            WALKTHROUGH_FUNCTIONS, capture_output=True, text=True, timeout=120)
    print(result.stdout.strip())
    if result.returncode not in (0, 77):
        print(result.stderr[-4000:], file=sys.stderr)
        raise SystemExit("FAIL the dashboard in Chromium did not show the walk-through's runs")


def main():
    mode, source, app_binary, inngest_local = sys.argv[1:5]
    if mode not in ("embedded", "dev", "cloud"):
        raise SystemExit("mode: embedded, dev or cloud")
    for tool in ("lpadmin", "cupsd", "pdftotext", "openssl"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SystemExit(f"{tool} is missing (scripts/setup installs it)")
    d = Deployment(mode, source, app_binary, inngest_local)
    ok = False
    try:
        d.start()
        alice = d.token("alice", "admin")
        script = walkthrough_script(os.path.join(source, "README.md"))
        # Scratch files first: the paths put in afterwards may lie under /tmp themselves.
        script = (script.replace("/tmp/", f"{d.work}/")
                  .replace("127.0.0.1:8200", f"127.0.0.1:{d.app_port}")
                  .replace("127.0.0.1:8288", d.executor_base)
                  .replace("build/dev/app/riveredge-flow", app_binary)
                  .replace(".data/cups/pdf/", f"{d.work}/cups/pdf/"))
        env = dict(d.app_env)
        env.update({"TOKEN": alice, "EXECUTOR_KEY": d.executor_key,
                    "METRICS_TOKEN": d.app_env["RIVEREDGE_METRICS_TOKEN"]})
        with open(os.path.join(d.work, "walkthrough.sh"), "w", encoding="utf-8") as out:
            out.write(PRELUDE + script)
        print(f"running the README walk-through ({mode}) from {d.work}/walkthrough.sh")
        result = subprocess.run(["bash", os.path.join(d.work, "walkthrough.sh")],
                                cwd=source, env=env, capture_output=True, text=True)
        with open(os.path.join(d.work, "walkthrough.out"), "w", encoding="utf-8") as out:
            out.write(result.stdout)
            out.write(result.stderr)
        if result.returncode != 0:
            print(result.stderr[-6000:], file=sys.stderr)
            raise SystemExit(f"the walk-through stopped (exit {result.returncode})")
        print(f"ok   every line of the walk-through answered 2xx")

        bob = d.token("bob")
        # What the README says the lines lead to.
        d.eventually("the message reached alice's inbox", "/api/v1/messages/inbox", alice,
                     lambda r: any(i.get("subject") == "审批通知" for i in r["items"]))
        d.eventually("the asynchronous script run succeeded with 4", "/api/v1/scripts/1/runs",
                     alice, lambda r: any(i["status"] == "succeeded" and i.get("result") == 4
                                          for i in r["items"]))
        d.eventually("the schedule is paused", "/api/v1/schedules/1", alice,
                     lambda r: r["enabled"] is False or r.get("paused_reason") == "quiet")
        d.eventually("the leave request completed", "/api/v1/approvals/instances/1", alice,
                     lambda r: r["status"] == "completed")
        d.eventually("bob was notified of his task", "/api/v1/messages/inbox", bob,
                     lambda r: len(r["items"]) >= 1)
        d.eventually("the batch release completed", "/api/v1/approvals/instances/2", alice,
                     lambda r: r["status"] == "completed")
        d.eventually("record 1 is archived by the records-archive function",
                     "/api/v1/records/1/archive", alice, lambda r: r["valid"] is True)
        d.eventually("record 2 is effective with valid signatures",
                     "/api/v1/records/2/signatures/verify", alice,
                     lambda r: r.get("valid") is True)
        d.eventually("the render finished", "/api/v1/print/renders/1", alice,
                     lambda r: r["status"] == "done")
        d.eventually("the print job completed", "/api/v1/print/jobs/1", alice,
                     lambda r: r["status"] == "completed")
        d.eventually("the order reached its final state", "/api/v1/workflows/executions/1",
                     alice, lambda r: r["status"] == "completed"
                     and r["current_state"] == "delivered"
                     and r["context"].get("carrier") == "SF Express")
        d.eventually("the order's history holds each state it entered",
                     "/api/v1/workflows/executions/1/history", alice,
                     lambda r: [i["step_key"] for i in r["items"] if i["phase"] == "entry"] ==
                     ["entry:created#1", "entry:paid#1", "entry:shipped#1", "entry:delivered#1"])
        pdfs = [f for f in os.listdir(f"{d.work}/cups/pdf")] if os.path.isdir(
            f"{d.work}/cups/pdf") else []
        if not any(f.endswith(".pdf") for f in pdfs):
            raise SystemExit("FAIL the virtual printer wrote no PDF")
        print("ok   the virtual printer wrote the PDF")
        preview = subprocess.run(["pdftotext", f"{d.work}/preview.pdf", "-"],
                                 capture_output=True, text=True).stdout
        if "INV-0042" not in preview or "玖万捌仟柒佰陆拾伍元肆角整" not in preview:
            raise SystemExit(f"FAIL the preview PDF reads {preview!r}")
        print("ok   the preview reads 销售发票 INV-0042 … 玖万捌仟柒佰陆拾伍元肆角整")
        check_dashboard(d)
        ok = True
    finally:
        d.stop()
        if not ok:
            d.dump_logs()
    shutil.rmtree(d.work, ignore_errors=True)
    print(f"README walk-through passed ({mode})")


if __name__ == "__main__":
    main()
