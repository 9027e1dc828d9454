"""RunPod: the Serverless client and its errors, callback tokens, call budgets per endpoint,
and the direct operations behind `/v1/runpod/...`."""
