"""Accounts: API keys, their limits and usage, the rate limit, idempotency keys, the `keys` CLI."""
