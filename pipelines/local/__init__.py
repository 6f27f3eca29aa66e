"""Docker-free local mode: execute a SageMaker pipeline definition on this machine."""
