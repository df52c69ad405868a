"""Exports: snapshots of labels and the files written from them (WebDataset, CosmicMan parquet,
JSONL, Label Studio), to a local folder or S3-compatible storage, by parallel part tasks."""
