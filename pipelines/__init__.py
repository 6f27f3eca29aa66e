"""The SageMaker training pipeline: its definition (SDK v3), AWS upsert/start, and the local runner."""
