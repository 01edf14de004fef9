"""Stages of the `intel` target (OpenVINO): conversion and NNCF INT8, the saved IR, validation,
runtime tuning and benchmarks."""
