#!/usr/bin/env python3
"""`vault-triage probe` against a big cluster: the lab's world plus --bulk-workloads,
--bulk-external-secrets and bulk pods, next to the same world without them.

Usage: python3 bench/consumers_probe.py [--binary target/release/vault-triage]
                                        [--workloads 2000] [--external-secrets 500]
                                        [--pods 5000] [--latency-ms 50] [--runs 20]

Times the whole `probe --format json` process in the reviewer-jwt-expired world (every call
of the lab delayed by --latency-ms), with and without the bulk objects, and reports the
ratio (target: at most 1.5x) and the probe's peak RSS (`/usr/bin/time -v`). The bulk pods
(--pods, 4-8 KB of JSON each, owned by the bulk workloads in turn, one in twenty injected by
the Vault Agent Injector) are the lab's --bulk-pods. The bot lists each kind a page of 500 at
a time (the API server's chunking), and the pods as every pod's metadata
(`PartialObjectMetadataList`, a page of 5,000) and the Pending pods in full
(`fieldSelector=status.phase=Pending`, a page of 500).
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

from benchlib import percentile, start_lab


def run(binary, env, runs):
    times = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run([binary, "probe", "--format", "json"], env=env,
                             capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
    report = json.loads(out.stdout)
    rss = None
    timed = subprocess.run(["/usr/bin/time", "-v", binary, "probe", "--format", "json"], env=env,
                           capture_output=True, text=True, check=False)
    for line in timed.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) / 1024
    return times, report, rss


def measure(binary, args, bulk):
    with tempfile.TemporaryDirectory() as d:
        extra = ["--bulk-workloads", str(args.workloads),
                 "--bulk-external-secrets", str(args.external_secrets),
                 "--bulk-pods", str(args.pods)] if bulk else []
        lab, exported = start_lab(binary, d, "--scenario", "reviewer-jwt-expired",
                                  "--latency-ms", str(args.latency_ms), *extra)
        try:
            env = {**os.environ, **exported, "VAULT_TRIAGE_LOG": "warn"}
            return run(binary, env, args.runs)
        finally:
            lab.terminate()
            lab.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default="target/release/vault-triage")
    p.add_argument("--workloads", type=int, default=2000)
    p.add_argument("--external-secrets", type=int, default=500)
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--latency-ms", type=int, default=50)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    base, base_report, base_rss = measure(args.binary, args, False)
    big, big_report, big_rss = measure(args.binary, args, True)
    workloads = len(big_report["evidence"]["workloads"]["value"])
    syncs = len(big_report["evidence"]["secret_syncs"]["value"])
    print("| world | workloads found | secret syncs found | median | p99 | probe peak RSS |")
    print("|---|---|---|---|---|---|")
    print(f"| lab | {len(base_report['evidence']['workloads']['value'])} | "
          f"{len(base_report['evidence']['secret_syncs']['value'])} | "
          f"{statistics.median(base) * 1000:.1f} ms | {percentile(base, 99) * 1000:.1f} ms | "
          f"{base_rss:.1f} MiB |")
    print(f"| lab + {args.workloads} workloads + {args.external_secrets} ExternalSecrets + "
          f"{args.pods} pods | "
          f"{workloads} | {syncs} | {statistics.median(big) * 1000:.1f} ms | "
          f"{percentile(big, 99) * 1000:.1f} ms | {big_rss:.1f} MiB |")
    print(f"\nratio of medians: **{statistics.median(big) / statistics.median(base):.2f}x** "
          f"(target at most 1.5x); verdicts {base_report['verdict']['code']} / "
          f"{big_report['verdict']['code']}")


if __name__ == "__main__":
    main()
