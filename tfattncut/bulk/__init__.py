"""Bulk translation on Apache Beam: `launch.bulk_translate` translates every file an input
glob matches with an exported SavedModel, on any Beam runner (local processes, Dataflow,
Flink, Spark), resumable and with a dead-letter file for inputs that cannot be translated.

files.py         where each input's outputs go; atomic writes; stale temporaries
images.py        one file's bytes -> checked uint8 pixels; pixels -> PNG/JPEG bytes
model_handler.py the SavedModel a job runs (version, on-the-fly export) and its ModelHandler
pipeline.py      the pipeline, its metrics and the end-of-job summary
benchmark.py     one-process translation versus the pipeline, in images/s and GFLOP/s
"""
