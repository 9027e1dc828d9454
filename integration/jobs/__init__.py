"""Jobs: the record and its states, the store and its Lua scripts, events, the job's log,
waiting for a job to end, RunPod outcomes, and accepting a new job."""
