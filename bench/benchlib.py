"""What both benchmarks need: the lab as a child process, and percentiles."""
import re
import subprocess


def percentile(values, p):
    """The nearest-rank percentile `p` (0-100) of `values`."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))]


def start_lab(binary, workdir, *args):
    """Starts `vault-triage lab --dir workdir ARGS...`; returns the process and the settings it
    exports (VAULT_ADDR, VAULT_TOKEN, KUBECONFIG, VAULT_TRIAGE_CONFIG)."""
    proc = subprocess.Popen([binary, "lab", "--foreground", "--dir", workdir, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    env = {}
    while len(env) < 4:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("lab exited early")
        m = re.match(r"export (\w+)=(.*)", line.strip())
        if m:
            env[m.group(1)] = m.group(2).strip("'")
    return proc, env
