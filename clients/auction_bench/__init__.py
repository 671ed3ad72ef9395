"""Load generators, benchmarks and the experiments harness."""

import os

# Children are spawned with preexec_fn while gRPC calls are in flight; gRPC fork handlers would crash them.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
