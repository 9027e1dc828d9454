"""Everything that talks to the outside: HTTP, schemas, RunPod, Redis, auth, the registry."""
