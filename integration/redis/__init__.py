"""Redis plumbing every domain shares: the connection (or the embedded server), group
commit of concurrent script calls, leased sets of due work, and loading Lua scripts."""
