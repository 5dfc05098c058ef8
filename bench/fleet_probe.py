#!/usr/bin/env python3
"""`vault-triage probe` over a fleet of clusters with one Vault, against the lab.

Usage: python3 bench/fleet_probe.py [--binary target/release/vault-triage]
                                    [--clusters 20] [--latency-ms 50] [--runs 20]
                                    [--scenario reviewer-jwt-expired]

Starts `vault-triage lab --clusters c01=S,...,cNN=S --latency-ms L` (every cluster in scenario
S, the world of the single-cluster latency table) and times the whole `probe --format json`
process over all clusters, and over one (`--cluster c01`), next to one cluster's
dependency-chain limit (TokenRequest -> login -> Vault's own TokenReview = 3 x L; a healthy
cluster's chain is longer: the canary also reads its secret and revokes its token, 5 x L).
Peak RSS of one fleet probe (`/usr/bin/time -v`) and of the lab (VmHWM) are reported too.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time

from benchlib import percentile, start_lab

CHAIN_CALLS = 3


def timed_probe(binary, env, *args):
    t0 = time.perf_counter()
    out = subprocess.run([binary, "probe", "--format", "json", *args], env=env,
                         capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    return elapsed, out


def peak_rss_kb(binary, env):
    out = subprocess.run(["/usr/bin/time", "-v", binary, "probe", "--format", "json"], env=env,
                         capture_output=True, text=True, check=False)
    for line in out.stderr.splitlines():
        if "Maximum resident set size" in line:
            return int(line.split(":")[1])
    return None


def vm_hwm_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/vault-triage")
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--scenario", default="reviewer-jwt-expired")
    a = ap.parse_args()
    names = [f"c{i:02d}" for i in range(1, a.clusters + 1)]
    spec = ",".join(f"{n}={a.scenario}" for n in names)
    with tempfile.TemporaryDirectory() as work:
        lab, exported = start_lab(a.binary, work, "--clusters", spec,
                                  "--latency-ms", str(a.latency_ms))
        try:
            env = dict(os.environ, **exported, VAULT_TRIAGE_LOG="warn")
            env.pop("VAULT_TRIAGE_CLUSTER", None)
            # Warm-up, and a check that every cluster got its expected verdict.
            _, out = timed_probe(a.binary, env)
            report = json.loads(out.stdout)
            got = {c["cluster"]: c["verdict"]["code"] for c in report["clusters"]}
            want = {n: a.scenario.replace("-", "_") for n in names}
            assert got == want, (got, want)
            fleet = [timed_probe(a.binary, env)[0] * 1000 for _ in range(a.runs)]
            one = [timed_probe(a.binary, env, "--cluster", names[0])[0] * 1000
                   for _ in range(a.runs)]
            limit = (CHAIN_CALLS if a.scenario != "healthy" else 5) * a.latency_ms
            rss = peak_rss_kb(a.binary, env)
            print(f"| clusters | lab latency per call | one cluster's chain limit | "
                  f"one cluster median | fleet median | fleet p99 | fleet / limit | "
                  f"probe peak RSS | lab VmHWM |")
            print("|---|---|---|---|---|---|---|---|---|")
            print(f"| {a.clusters} | {a.latency_ms} ms | {limit} ms | "
                  f"{statistics.median(one):.1f} ms | {statistics.median(fleet):.1f} ms | "
                  f"{percentile(fleet, 99):.1f} ms | "
                  f"**{statistics.median(fleet) / limit:.2f}×** | "
                  f"{rss / 1024:.1f} MiB | {vm_hwm_kb(lab.pid) / 1024:.1f} MiB |")
        finally:
            lab.send_signal(signal.SIGTERM)
            lab.wait(timeout=10)


if __name__ == "__main__":
    main()
