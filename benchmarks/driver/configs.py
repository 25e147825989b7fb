"""The workload configurations of each mode (full, quick, smoke) and what each one reports."""

from __future__ import annotations

from .model import Config, Metric  # noqa: F401 (Config: run.py's type hints)

LATENCY = [Metric("p50_us", "p50 µs", "lower"), Metric("p99_us", "p99 µs", "lower"),
           Metric("foreign_cpu_share", "other load", "info")]
PINGPONG = [
    Metric("msgs_per_s", "msgs/s", "higher"),
    Metric("server_cpu_us_per_msg", "server CPU µs/msg", "lower"),
    Metric("client_server_cpu_us_per_msg", "client+server CPU µs/msg", "lower"),
    Metric("server_cpu_share", "server CPU share", "info"),
    Metric("foreign_cpu_share", "other load", "info"),
]
BULK = [Metric("gb_per_s", "GB/s", "higher")]
CHURN = [
    Metric("connections_per_s", "conn/s", "higher"),
    Metric("resets", "resets", "zero"),
    Metric("short_replies", "short", "zero"),
    Metric("system_tcp_out_rsts_delta", "OutRsts (system)", "zero"),
]
CHURN_TLS = [
    Metric("connections_per_s", "conn/s", "higher"),
    Metric("resets", "resets", "zero"),
    Metric("short_replies", "short", "zero"),
    Metric("truncated", "FIN without close_notify", "zero"),
    Metric("other_failures", "other failures", "zero"),
]
IDLE = [Metric("bytes_per_connection", "B/conn", "lower")]
STOP = [
    Metric("server_exit_s", "stop s", "lower"),
    Metric("lost_bytes", "lost B", "zero"),
    Metric("ended_reset", "resets", "zero"),
    Metric("hung", "hung", "zero"),
]

# Fixed per-run overhead (server start, connection set-up, stop) used by the time projection.
OVERHEAD_S = 0.15

# Repetitions (rounds) per mode: W1 and W2 compare peers within a few percent and need enough
# rounds for an interval (nine: one disturbed round at either end does not widen it;
# docs/benchmarks.md, "Reading the results"); W3-W6 do not, and W5's
# RSS is the same to the byte in every round.
REPS = {"full": {"W1": 9, "W2": 9, "W5": 2, "W1-TLS": 9, "W2-TLS": 9}, "quick": {}, "smoke": {}}
OTHER_REPS = {"full": 3, "quick": 1, "smoke": 1}


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def make_configs(mode: str, client: str, reps: int | None,
                 pair_one_cpu: bool = True) -> list[Config]:
    """`client` is orderly_load's --client for W1 and W2; `reps` overrides every default;
    `pair_one_cpu` puts the server and the load generator of W1 and W2 on one CPU."""
    def n(workload: str) -> int:
        return reps or REPS[mode].get(workload, OTHER_REPS[mode])

    cl = ["--client", client]
    if mode == "smoke":
        return [Config("W1", "64 B", ["--workload", "latency", "--seconds", "1", "--warmup",
                                      "0.2"] + cl, 1.2, LATENCY, "p50_us", n("W1"),
                       pair_one_cpu),
                Config("W1-TLS", "64 B", ["--tls", "--workload", "latency", "--seconds", "1",
                                          "--warmup", "0.2"], 1.3, LATENCY, "p50_us",
                       n("W1-TLS"), pair_one_cpu, tls=True)]
    full = mode == "full"
    lat_s = 1.5 if full else 1
    pp_s = 1.2 if full else 1.0
    other_s = 2 if full else 1.0
    warm = "0.3"
    conns = [1, 100, 1000] if full else [1, 100]
    idle_n = 10000 if full else 2000
    stop_n = 1000 if full else 200
    out = [Config("W1", "64 B x 1", ["--workload", "latency", "--seconds", str(lat_s),
                                     "--warmup", warm] + cl, lat_s + float(warm), LATENCY,
                  "p50_us", n("W1"), pair_one_cpu)]
    for size in (64, 4096):
        for c in conns:
            out.append(Config("W2", f"{size_label(size)} x {c}",
                              ["--workload", "pingpong", "--size", str(size), "--connections",
                               str(c), "--seconds", str(pp_s), "--warmup", warm] + cl,
                              pp_s + float(warm) + c / 5000, PINGPONG, "msgs_per_s", n("W2"),
                              pair_one_cpu))
    out.append(Config("W3", "16 KiB chunks", ["--workload", "bulk", "--seconds", str(other_s),
                                              "--warmup", warm],
                      other_s + float(warm), BULK, "gb_per_s", n("W3")))
    out.append(Config("W4", "100 B x 16", ["--workload", "churn", "--connections", "16",
                                           "--seconds", str(other_s)], other_s, CHURN,
                      "connections_per_s", n("W4")))
    out.append(Config("W5", f"{idle_n} idle", ["--workload", "idle", "--connections",
                                               str(idle_n), "--seconds", "1"],
                      1 + idle_n / 10000, IDLE, "bytes_per_connection", n("W5")))
    out.append(Config("W6", f"SIGTERM x {stop_n}", ["--workload", "stop", "--connections",
                                                    str(stop_n), "--seconds", "1"],
                      1 + stop_n / 2000, STOP, "server_exit_s", n("W6")))
    return out + tls_configs(full, n, pair_one_cpu)


def tls_configs(full: bool, n, pair_one_cpu: bool) -> list[Config]:
    """The TLS group (issue 15): W1, W2 ({64 B, 4 KiB} x {1, 100}), W3 and W4 over TLS 1.3
    against the TLS peers, with orderly_load --tls (an OpenSSL client on epoll: the io_uring
    client has no TLS). Set-up is one full handshake per connection, before the measurement."""
    lat_s = 1.5 if full else 1
    pp_s = 1.2 if full else 1.0
    other_s = 2 if full else 1.0
    warm = "0.3"
    t = ["--tls"]
    out = [Config("W1-TLS", "64 B x 1", t + ["--workload", "latency", "--seconds", str(lat_s),
                                             "--warmup", warm], lat_s + float(warm) + 0.05,
                  LATENCY, "p50_us", n("W1-TLS"), pair_one_cpu, tls=True)]
    for size in (64, 4096):
        for c in (1, 100):
            out.append(Config("W2-TLS", f"{size_label(size)} x {c}",
                              t + ["--workload", "pingpong", "--size", str(size),
                                   "--connections", str(c), "--seconds", str(pp_s),
                                   "--warmup", warm],
                              pp_s + float(warm) + c / 1000, PINGPONG, "msgs_per_s",
                              n("W2-TLS"), pair_one_cpu, tls=True))
    out.append(Config("W3-TLS", "16 KiB chunks", t + ["--workload", "bulk", "--seconds",
                                                      str(other_s), "--warmup", warm],
                      other_s + float(warm), BULK, "gb_per_s", n("W3-TLS"), tls=True))
    out.append(Config("W4-TLS", "100 B x 16, full handshakes",
                      t + ["--workload", "churn", "--connections", "16", "--seconds",
                           str(other_s)], other_s, CHURN_TLS, "connections_per_s", n("W4-TLS"),
                      tls=True))
    return out
