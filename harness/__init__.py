"""Orchestration: the CLI, the runner, storage and executors. No ML logic lives here."""
