"""Names of the CPU worker's own tasks (the GPU side's and the persist tasks' names live in
workers.contracts). Services enqueue by name, so sending a job never imports the task's module."""

INGEST_SCAN = "cpu.ingest.scan"
INGEST_BATCH = "cpu.ingest.batch"
# Build a GPU batch from database state and send it (the GPU worker has no database).
DISPATCH_ANALYZE = "cpu.pipeline.analyze"
DISPATCH_EMBED = "cpu.pipeline.embed"
DISPATCH_PRELABEL = "cpu.pipeline.prelabel"
RECONCILE = "cpu.reconcile"
