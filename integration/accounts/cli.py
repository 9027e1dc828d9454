"""`flask --app app keys ...`: create, list and revoke API keys; set their limits; show their usage.

The limit options are made from `limits.LIMITS`, so a new limit is an option here
without an edit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
import redis

from integration.accounts import limits
from integration.accounts.keys import ApiKey, create_key, find_key, list_keys, revoke_key, set_limits, stored_limits
from integration.redis.connection import redis_problem

if TYPE_CHECKING:
    from integration.resources import Resources


class _KeysGroup(click.Group):
    """Redis out of reach is one line saying why (TLS named as such), not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except redis.exceptions.ConnectionError as error:
            raise click.ClickException(redis_problem(error) or f"Redis does not answer: {error}") from None


def keys_group(resources: Callable[[], Resources]) -> click.Group:
    """The `keys` command group, on the resources `resources()` gives (the app's)."""
    keys = _KeysGroup("keys", help="Create, list and revoke API keys; set their limits; show their usage.")

    def effective(key: ApiKey) -> limits.Limits:
        res = resources()
        return limits.Limits.resolve(stored_limits(res.redis, key.id), res.settings)

    def find(id_or_name: str) -> ApiKey:
        try:
            key = find_key(resources().redis, id_or_name)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        if key is None:
            raise click.ClickException(f"no key {id_or_name}")
        return key

    @keys.command("create")
    @click.argument("name")
    @click.option(
        "--admin", is_flag=True, help="An admin key: may purge endpoint queues, name any endpoint, see endpoint health."
    )
    def keys_create(name: str, admin: bool) -> None:
        """Create an API key; the key itself is printed once, on the last line."""
        existing = next((k for k in list_keys(resources().redis) if k.name == name and not k.revoked), None)
        if existing is not None:
            raise click.ClickException(f"a key named {name!r} exists ({existing.id}): names pick keys out, so they are unique")
        key, secret = create_key(resources().redis, name, admin=admin)
        kind = "admin key" if admin else "key"
        click.echo(f"Created {kind} {key.id} ({name}). Store it now; it is not shown again:")
        click.echo(secret)

    @keys.command("list")
    def keys_list() -> None:
        """List keys (ids, names, prefixes; never the keys)."""
        for key in list_keys(resources().redis):
            state = ("revoked" if key.revoked else "active") + (" admin" if key.admin else "")
            click.echo(f"{key.id}\t{key.name}\t{key.prefix}…\t{state}\t{effective(key).describe()}")

    @keys.command("limits")
    @click.argument("key_id")
    def keys_limits(key_id: str, **values: str | None) -> None:
        """Show a key's limits, or change them (they apply within 5 seconds)."""
        key = find(key_id)
        try:
            set_limits(resources().redis, key.id, **values)
        except ValueError as error:
            raise click.ClickException(f"invalid limit: {error}") from None
        click.echo(f"{key.id}\t{key.name}\t{effective(key).describe()}")

    for spec in limits.LIMITS:
        click.option(f"--{spec.name}", spec.name, help=f"{spec.help}: a number, 'unlimited' or 'default'.")(keys_limits)

    @keys.command("usage")
    @click.argument("key_id")
    @click.option("--month", "period", help="The month, YYYY-MM (default: this one, UTC).")
    def keys_usage(key_id: str, period: str | None) -> None:
        """Show a key's spend this month, the cost its jobs in flight reserve, and its limits."""
        key = find(key_id)
        if period is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
            raise click.ClickException(f"--month must be YYYY-MM, such as 2026-12, not {period!r}")
        used = limits.usage(resources().redis, key.id, period).to_dict()
        click.echo(f"key              {key.id} ({key.name})")
        click.echo(f"period           {used['period']}")
        click.echo(f"spend            {used['spend']:.6f} USD over {used['completed_jobs']} completed jobs")
        click.echo(f"jobs in flight   {used['jobs_in_flight']} (reserving {used['reserved']:.6f} USD)")
        click.echo(f"limits           {effective(key).describe()}")

    @keys.command("revoke")
    @click.argument("key_id")
    def keys_revoke(key_id: str) -> None:
        """Revoke a key by id or name."""
        try:
            revoked = revoke_key(resources().redis, key_id)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        if not revoked:
            raise click.ClickException(f"no key {key_id}")
        click.echo(f"revoked {key_id}")

    return keys
