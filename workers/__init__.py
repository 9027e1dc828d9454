"""RQ task functions and the worker process: submit, track, cancel, sweep."""
