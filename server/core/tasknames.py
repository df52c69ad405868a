"""Names of the CPU worker's tasks (the GPU side's names live in workers.contracts).

Services enqueue by name, so sending a job never imports the task's module.
"""

INGEST_SCAN = "cpu.ingest.scan"
INGEST_BATCH = "cpu.ingest.batch"
ANALYZE_IMAGES = "cpu.images.analyze"
RECONCILE = "cpu.reconcile"
