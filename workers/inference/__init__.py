"""Stateless inference for the GPU worker: images and a model spec in, results out, no database.

pipeline      run_analyze / run_embed / run_prelabel: what the Celery tasks call
registry      one instance of each model per process, evicted when idle
labelers/     base (the Labeler interface), open_clip, vqa (+ answer_scoring), captioner, heads, stats
analyzers/    detector, person (boxes, whole-image fallback), parsing, quality
images        ImageRef -> RGB image or a typed per-image error; prefetch decodes ahead of the model
device, hf    CUDA with bf16 autocast or CPU fp32; transformers loading without pickle or remote code
benchmark     throughput figures for bench/
"""
