"""The load benchmark of Purse: a server under real gRPC traffic, next to its ceilings.

`generator` sends named workloads from several processes (open model at a fixed arrival
rate, or closed loop for throughput); `echo_server` is the empty-call ceiling built with
Purse's own server options; `memberships` builds a business of a million members by
COPY; `gc_recorder` runs `purse serve` with its garbage collections counted; `run` is the
orchestrator (`python -m benchmarks.load.run`) that starts everything on 127.0.0.1, adds
h2load and pgbench, and prints one table with the targets judged. See README.md beside
this file.
"""
