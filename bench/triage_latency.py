#!/usr/bin/env python3
"""Triage latency against the lab: `vault-triage probe` next to the dependency-chain limit and
next to the manual runbook scripted with curl (one call after another).

Usage: python3 bench/triage_latency.py [--binary target/release/vault-triage]
                                       [--latency-ms 0,10,50] [--runs 30] [--scenario S]

For each latency it starts `vault-triage lab --latency-ms L`, then times:
  * probe:   `vault-triage probe --format json` (whole process, wall clock);
  * runbook: what an engineer types today, with curl, in order: sys/health, a login with a pod
             token, a read of auth/kubernetes/config, and a TokenReview of the pod token
             (the pod token is minted beforehand, outside the timing, as a pod already has one).
The dependency-chain limit is the longest chain of simulated calls that must follow one
another in a triage: TokenRequest -> login -> Vault's own TokenReview = 3 x L.
Peak RSS of one probe (`/usr/bin/time -v`) and of the lab (VmHWM) are reported too.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

from benchlib import percentile, start_lab

CHAIN_CALLS = 3


def curl(*args):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args],
                         capture_output=True, text=True, check=False)
    return out.stdout


def curl_json(*args):
    out = subprocess.run(["curl", "-s", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def kube_token(env):
    text = open(env["KUBECONFIG"]).read()
    return re.search(r"token:\s*(\S+)", text).group(1).strip('"')


def runbook(env, pod_jwt, bot_kube):
    vault, token = env["VAULT_ADDR"], env["VAULT_TOKEN"]
    t0 = time.perf_counter()
    curl(f"{vault}/v1/sys/health")
    curl("-X", "POST", f"{vault}/v1/auth/kubernetes/login",
         "-d", json.dumps({"role": "vault-triage-canary", "jwt": pod_jwt}))
    curl("-H", f"X-Vault-Token: {token}", f"{vault}/v1/auth/kubernetes/config")
    curl("-X", "POST", "-H", f"Authorization: Bearer {bot_kube}", "-H", "Content-Type: application/json",
         f"{vault}/apis/authentication.k8s.io/v1/tokenreviews",
         "-d", json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                           "spec": {"token": pod_jwt}}))
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/vault-triage")
    ap.add_argument("--latency-ms", default="0,10,50")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--scenario", default="reviewer-jwt-expired")
    a = ap.parse_args()
    print(f"scenario {a.scenario}, {a.runs} runs each, binary {a.binary}")
    print("| latency | chain limit | probe median | probe p99 | probe / limit | runbook median | runbook / probe |")
    print("|---|---|---|---|---|---|---|")
    rss = {}
    for latency in [int(x) for x in a.latency_ms.split(",")]:
        workdir = f"/tmp/vault-triage-bench-{os.getpid()}-{latency}"
        lab, env = start_lab(a.binary, workdir, "--scenario", a.scenario,
                             "--latency-ms", str(latency))
        try:
            child_env = {**os.environ, **env, "VAULT_TRIAGE_LOG": "warn"}
            bot_kube = kube_token(env)
            minted = curl_json("-X", "POST", "-H", f"Authorization: Bearer {bot_kube}",
                               "-H", "Content-Type: application/json",
                               f"{env['VAULT_ADDR']}/api/v1/namespaces/vault-triage/serviceaccounts/vault-triage-canary/token",
                               "-d", '{"spec":{"expirationSeconds":3600}}')
            pod_jwt = minted["status"]["token"]
            for _ in range(3):
                subprocess.run([a.binary, "probe", "--format", "json"], env=child_env,
                               stdout=subprocess.DEVNULL, check=False)
            probe_times, runbook_times = [], []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                r = subprocess.run([a.binary, "probe", "--format", "json"], env=child_env,
                                   stdout=subprocess.PIPE, check=False)
                probe_times.append(time.perf_counter() - t0)
                if r.returncode not in (0, 2):
                    raise SystemExit(f"probe failed with {r.returncode}")
                runbook_times.append(runbook(env, pod_jwt, bot_kube))
            limit = CHAIN_CALLS * latency / 1000
            pm, p99 = statistics.median(probe_times), percentile(probe_times, 99)
            rm = statistics.median(runbook_times)
            ratio = f"{pm / limit:.2f}x" if limit else "n/a"
            print(f"| {latency} ms | {limit*1000:.0f} ms | {pm*1000:.1f} ms | {p99*1000:.1f} ms | {ratio} | "
                  f"{rm*1000:.1f} ms | {rm / pm:.2f}x |")
            if latency == max(int(x) for x in a.latency_ms.split(",")):
                t = subprocess.run(["/usr/bin/time", "-v", a.binary, "probe", "--format", "json"], env=child_env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
                m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t.stderr)
                rss["probe"] = int(m.group(1)) if m else None
                status = open(f"/proc/{lab.pid}/status").read()
                m = re.search(r"VmHWM:\s+(\d+) kB", status)
                rss["lab"] = int(m.group(1)) if m else None
        finally:
            lab.send_signal(signal.SIGINT)
            lab.wait(timeout=10)
    print()
    print(f"peak RSS: probe {rss.get('probe')} kB, lab {rss.get('lab')} kB")


if __name__ == "__main__":
    sys.exit(main())
