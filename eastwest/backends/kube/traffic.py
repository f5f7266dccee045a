"""Requests, probes and steady load from inside pods: shell scripts run by one exec each, and their parsers.

A batch of requests is ONE exec running a curl loop (one curl, so one connection, per request)
that prints one line per request in a fixed format; parsing it gives typed EchoResponses. Both
images the workloads use have what the scripts need: ``curlimages/curl`` (Alpine: busybox sh,
base64, mktemp) and Istio's ``proxyv2`` (Ubuntu: sh, coreutils, curl). Probes run in the
``istio-proxy`` container where there is one: its traffic (UID 1337) is never redirected to the
sidecar, so a probe sees the network as it is, not the sidecar accepting every connection.
"""

from __future__ import annotations

import base64
import re
import shlex

from eastwest.mesh import LoadSample, ProbeResult
from eastwest.support.echo import EchoResponse

MARK = "@@EW"

# curl's exit codes (curl(1) "EXIT CODES") as the short phrases the checks look for
_CURL_ERRORS = {
    6: "could not resolve host",
    7: "could not connect",
    28: "timed out",
    35: "TLS handshake failed",
    52: "connection closed without a response",
    56: "connection reset by peer",
}
# what curl prints for exit 7, by cause
_CONNECT_ERRORS = ("connection refused", "no route to host", "network is unreachable", "host is unreachable")


def _limit(seconds: float) -> str:
    """A curl time limit: curl reads 0 as "no limit", the mesh interface as "at once"."""
    return f"{max(seconds, 0.001):g}"


def _b64(path: str) -> str:
    return f'$(base64 < "{path}" | tr -d "\\n")'


def call_script(url: str, *, count: int, headers: dict[str, str], timeout: float) -> str:
    """``count`` sequential requests, one curl (one connection) each; one ``@@EW`` line per request."""
    head = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())
    curl = (f'curl -sSv -o "$d/b" -D "$d/h" --max-time {_limit(timeout)} --connect-timeout {_limit(timeout)} {head} '
            f"-w '%{{http_code}} %{{time_total}}' {shlex.quote(url)}")
    return "\n".join([
        'd=$(mktemp -d) || exit 97',
        "i=0",
        f'while [ "$i" -lt {int(count)} ]; do',
        "  i=$((i+1)); : > \"$d/b\"; : > \"$d/h\"",
        f'  {curl} > "$d/w" 2> "$d/e"',
        "  rc=$?",
        f'  printf "{MARK} %s %s h:%s b:%s e:%s\\n" "$rc" "$(cat "$d/w")" "{_b64("$d/h")}" "{_b64("$d/b")}" "{_b64("$d/e")}"',
        "done",
        'rm -rf "$d"',
    ])


_CALL_LINE = re.compile(rf"^{MARK} (\d+) (\d+) ([\d.]+) h:(\S*) b:(\S*) e:(\S*)$")


def _decode(text: str) -> str:
    return base64.b64decode(text).decode(errors="replace") if text else ""


def _headers(raw: str) -> dict[str, str]:
    """The last header block of curl's ``-D`` output (after any 100 Continue)."""
    blocks = [b for b in raw.replace("\r\n", "\n").split("\n\n") if b.strip()]
    out: dict[str, str] = {}
    for line in (blocks[-1].splitlines()[1:] if blocks else []):
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out


def curl_error(rc: int, stderr: str) -> str:
    """A curl failure as the phrase the checks know ("connection refused", "timed out", ...)."""
    low = stderr.lower()
    if rc == 7:
        return next((e for e in _CONNECT_ERRORS if e in low), "could not connect")
    return _CURL_ERRORS.get(rc, f"curl exit {rc}: {stderr.strip().splitlines()[-1] if stderr.strip() else 'no message'}")


def parse_calls(stdout: str, url: str) -> list[EchoResponse]:
    out = []
    for line in stdout.splitlines():
        match = _CALL_LINE.match(line.strip())
        if not match:
            continue
        rc, code, took = int(match[1]), int(match[2]), float(match[3])
        if rc == 0 and code:
            out.append(EchoResponse.from_http(url=url, status=code, headers=_headers(_decode(match[4])), body=_decode(match[5]),
                                              latency_s=took))
        else:
            out.append(EchoResponse.failed(url=url, error=curl_error(rc, _decode(match[6])), latency_s=took))
    return out


def probe_script(address: str, port: int, *, send: bytes, timeout: float) -> str:
    """A raw TCP connection with curl's telnet scheme; with nothing to send, it ends once connected."""
    target = shlex.quote(f"telnet://{address}:{port}")
    lines = [
        'd=$(mktemp -d) || exit 97',
        f"printf %s {shlex.quote(base64.b64encode(send).decode())} | base64 -d > \"$d/in\"",
        f'curl -sSv --connect-timeout {_limit(timeout)} --max-time {_limit(2 * timeout)} {target} < "$d/in" > "$d/out" 2> "$d/err" &',
        "pid=$!",
    ]
    if not send:
        steps = int(timeout / 0.05) + 1
        lines += [f'n=0; while kill -0 "$pid" 2>/dev/null && ! grep -qiE "connected to|established connection" "$d/err" '
                  f'&& [ "$n" -lt {steps} ]; do sleep 0.05; n=$((n+1)); done',
                  'kill "$pid" 2>/dev/null']
    lines += ['wait "$pid"; rc=$?',
              f'printf "{MARK} %s o:%s e:%s\\n" "$rc" "{_b64("$d/out")}" "{_b64("$d/err")}"',
              'rm -rf "$d"']
    return "\n".join(lines)


_PROBE_LINE = re.compile(rf"^{MARK} (\d+) o:(\S*) e:(\S*)$")


def parse_probe(stdout: str) -> ProbeResult:
    for line in stdout.splitlines():
        match = _PROBE_LINE.match(line.strip())
        if not match:
            continue
        rc, reply, err = int(match[1]), base64.b64decode(match[2]) if match[2] else b"", _decode(match[3])
        connected = bool(re.search(r"connected to|established connection", err, re.IGNORECASE))
        if not connected:
            return ProbeResult(False, curl_error(rc, err))
        # 0: the peer closed (EOF); 56: it reset; 28 or killed by the script: still open at the end
        return ProbeResult(True, None, reply, closed_by_peer=rc in (0, 52, 56))
    raise ValueError(f"no probe result in the output: {stdout[-300:]!r}")


# ---- steady load ------------------------------------------------------------------------------


def load_start_script(folder: str, url: str, *, rate: float, timeout: float, limit: float) -> str:
    """Start a background loop: one request every 1/rate s (each in its own curl, not waiting for the
    previous one), at most ``rate * limit`` of them, until ``$folder/stop`` exists. Each request
    appends one line: its start (``/proc/uptime``, 10 ms steps, relative to the loop's start), exit
    status, HTTP status, duration and the body."""
    q = shlex.quote(folder)
    one = (f'read now _ < /proc/uptime; t=$(awk "BEGIN{{print $now - $t0}}"); f={q}/r.$i; '
           f"curl -sS -o $f.b --max-time {_limit(timeout)} --connect-timeout {_limit(timeout)} -w '%{{http_code}} %{{time_total}}' "
           f'{shlex.quote(url)} > $f.w 2> $f.e; rc=$?; '
           f'printf "{MARK} %s %s %s b:%s e:%s\\n" "$t" "$rc" "$(cat $f.w)" "{_b64("$f.b")}" "{_b64("$f.e")}" >> {q}/records; '
           f"rm -f $f.b $f.w $f.e")
    loop = (f'read t0 _ < /proc/uptime; i=0; while [ ! -e {q}/stop ] && [ "$i" -lt {max(1, int(rate * limit))} ]; do '
            f'i=$((i+1)); ( {one} ) & sleep {1.0 / rate:.4f}; done; wait; touch {q}/done')
    return f"mkdir -p {q} && : > {q}/records && (nohup sh -c {shlex.quote(loop)} > /dev/null 2>&1 &) && echo started"


def load_stop_script(folder: str, *, timeout: float) -> str:
    """Stop the loop, wait for requests in flight (each ends within ``timeout``), print the records."""
    q = shlex.quote(folder)
    steps = int((timeout + 2) / 0.1)
    return (f"touch {q}/stop; n=0; while [ ! -e {q}/done ] && [ \"$n\" -lt {steps} ]; do sleep 0.1; n=$((n+1)); done; "
            f"cat {q}/records; rm -rf {q}")


_LOAD_LINE = re.compile(rf"^{MARK} ([\d.]+) (\d+) (\d+) ([\d.]+) b:(\S*) e:(\S*)$")


def parse_load(stdout: str) -> list[LoadSample]:
    samples = []
    for line in stdout.splitlines():
        match = _LOAD_LINE.match(line.strip())
        if not match:
            continue
        t, rc, code, took = float(match[1]), int(match[2]), int(match[3]), float(match[4])
        if rc == 0 and code:
            answer = EchoResponse.from_http(url="", status=code, headers={}, body=_decode(match[5]), latency_s=took)
            samples.append(LoadSample(t, took, code, answer.cluster))
        else:
            samples.append(LoadSample(t, took, None, None, error=curl_error(rc, _decode(match[6]))))
    return sorted(samples, key=lambda s: s.t)


# ---- the sidecar's admin API through pilot-agent ---------------------------------------------------

#: ``pilot-agent request`` reaches Envoy's admin API on localhost:15000 from the istio-proxy container
#: (pilot/cmd/pilot-agent/app/request.go)
CLUSTERS = ["pilot-agent", "request", "GET", "clusters?format=json"]
CONFIG_DUMP = ["pilot-agent", "request", "GET", "config_dump"]
SERVER_INFO = ["pilot-agent", "request", "GET", "server_info"]


