"""mpt-serve's HTTP service: one frozen T5, every task of the store, mixed-task micro-batches."""
