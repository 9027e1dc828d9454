"""Webhooks: Standard Webhooks signing, subscriptions and signing secrets, deliveries and
their attempts, and the outbound address check every delivery passes."""
