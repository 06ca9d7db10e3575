"""Training beside other workers and processes: run claims on a shared store, a fresh process per run from a
fork server, and shards of a matrix. The path config -> resolved -> plan -> runner -> train -> results reads
without this package; plan.py calls into it."""
