"""The bundled RunPod emulator: RunPod's serverless API over HTTP, for local runs and tests."""
