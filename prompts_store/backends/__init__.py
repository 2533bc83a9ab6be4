"""The store backends: one module per concern of each.

sqlite_store, sqlite_schema              the embedded default: one SQLite file (WAL, synchronous=FULL)
postgres_store, postgres_schema,         replicas on many hosts: one PostgreSQL database,
postgres_listen                          LISTEN/NOTIFY waking every subscriber
sql_store, sql_rows, sql_schema,         what the two SQL backends share: reads, rows, migrations,
sql_jobs                                 the job rows
directory, journal, atomic               the interchange backend: safetensors files, a change log,
                                         crash-safe file writes
"""
