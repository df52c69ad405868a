"""Names of the CPU worker's own tasks (the GPU side's and the persist tasks' names live in
workers.contracts). Services enqueue by name, so sending a job never imports the task's module."""

INGEST_SCAN = "cpu.ingest.scan"
INGEST_BATCH = "cpu.ingest.batch"
# Watched sources: start the incremental runs that are due (beat).
SOURCES_WATCH = "cpu.sources.watch"
# Build a GPU batch from database state and send it (the GPU worker has no database).
DISPATCH_ANALYZE = "cpu.pipeline.analyze"
DISPATCH_EMBED = "cpu.pipeline.embed"
DISPATCH_PRELABEL = "cpu.pipeline.prelabel"
RECONCILE = "cpu.reconcile"
# Exports: freeze a snapshot's subjects and plan parts; write one part; merge and write the manifest.
EXPORT_PLAN = "cpu.export.plan"
EXPORT_PART = "cpu.export.part"
EXPORT_FINISH = "cpu.export.finish"
# Encode the documents that label changes made stale, before the next export needs them (beat).
EXPORT_REFRESH_DOCUMENTS = "cpu.export.refresh_documents"
# The flywheel: build a round's training job, re-label after a promotion, start due rounds (beat).
FLYWHEEL_ROUND = "cpu.flywheel.round"
FLYWHEEL_RELABEL = "cpu.flywheel.relabel"
FLYWHEEL_DUE_ROUNDS = "cpu.flywheel.due_rounds"
# Webhooks: send one delivery (claim, POST outside any transaction, record).
WEBHOOK_DELIVER = "cpu.webhooks.deliver"
# The dashboard: count and store the slow figures of large projects (beat, every minute).
DASHBOARD_STORE_FUNNELS = "cpu.dashboard.store_funnels"
