"""The bulk credit benchmark of Purse: a bulk action of 100,000 customers through a real
server, alone and while a steady load of sales runs, with the sales' latency beside it.

`operation` dry-runs, starts and watches one bulk credit through AdminService and checks
it in the database; `run` is the orchestrator (`python -m benchmarks.bulk.run`), built on
the pieces the other benchmarks share (`benchmarks.real_server`: the servers;
`benchmarks.load`: the demo business, the memberships built by COPY and the generator).
See README.md beside this file.
"""
