"""Command line of off-site copies: `verifier offsite list`, and `verifier prune --offsite` (the flag is
declared beside `prune`; this module does the work). Parsing and output only."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from verifier.config import Config, load_config
from verifier.config_offsite import offsite_target_name
from verifier.errors import ConfigError, LockHeld
from verifier.offsite.index import last_proofs, read_copies
from verifier.offsite.retention import apply_plan, plan_copies
from verifier.offsite.storage import TargetError, open_target
from verifier.offsite.upload import staging_dir
from verifier.render.retention import plan_table
from verifier.repository.backups import Repository
from verifier.repository.lock import RepositoryLock
from verifier.units import format_age, format_bytes

Commands = argparse._SubParsersAction  # argparse has no public name for it


def register(commands: Commands[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds `offsite list` to the `verifier` command."""
    offsite = commands.add_parser(
        "offsite", help="off-site copies: list them per target",
        description="The encrypted off-site copies `verifier run` uploads to each target in offsite:.",
    )  # fmt: skip
    offsite_commands = offsite.add_subparsers(title="offsite commands", metavar="COMMAND", required=True)
    listing = offsite_commands.add_parser(
        "list", parents=[common], help="every copy per target with age, size and last proof",
        description="Lists the copies on every off-site target, newest first: backup, age, size of the encrypted "
        "objects, when it was last proven (read back after upload, or `check --offsite`). Exit 1 when a target "
        "cannot be read.",
    )  # fmt: skip
    listing.add_argument("--json", action="store_true", help="print the copies as JSON")
    listing.set_defaults(handler=list_command)


def list_command(arguments: argparse.Namespace) -> int:
    """Prints every copy per target. Returns 0, or 1 when a target could not be read."""
    config = _offsite_config(arguments)
    repository = Repository(config.repository.path)
    now = datetime.now(UTC)
    proofs = last_proofs(repository.state_dir)
    listing: list[dict[str, object]] = []
    status = 0
    with staging_dir(repository.state_dir) as staging:
        for target_config in config.offsite:
            name = offsite_target_name(target_config)
            entry: dict[str, object] = {"target": name, "url": target_config.url, "copies": []}
            listing.append(entry)
            try:
                copies, _ = read_copies(open_target(target_config), staging)
            except TargetError as error:
                entry["error"] = str(error)
                status = 1
                continue
            entry["copies"] = [
                {
                    "backup": copy.name,
                    "created_at": copy.created_at.isoformat(),
                    "age_seconds": int((now - copy.created_at).total_seconds()),
                    "size_bytes": copy.size_bytes,
                    "missing": list(copy.missing),
                    "last_proof": proofs.get(name, {}).get(copy.name)
                    or {"at": copy.index.proven_at.isoformat(), "ok": True, "how": "read back after upload"},
                }
                for copy in reversed(copies)
            ]
    if arguments.json:
        print(json.dumps(listing, indent=2))
        return status
    for entry in listing:
        print(f"{entry['target']} ({entry['url']})")
        if "error" in entry:
            print(f"  cannot be read: {entry['error']}")
            continue
        copies_shown = entry["copies"]
        assert isinstance(copies_shown, list)
        if not copies_shown:
            print("  no copies yet")
        for copy in copies_shown:
            proof = copy["last_proof"]
            proven = (
                "proof failed" if not proof.get("ok") else f"proven {str(proof.get('at'))[:16]} ({proof.get('how')})"
            )
            missing = f"  MISSING {', '.join(copy['missing'])}" if copy["missing"] else ""
            age = format_age(now - datetime.fromisoformat(copy["created_at"]))
            print(f"  {copy['backup']}  {age}  {format_bytes(copy['size_bytes'])}  {proven}{missing}")
    return status


def prune_command(arguments: argparse.Namespace) -> int:
    """`prune --offsite`: prints each target's plan under offsite_retention and applies it unless --dry-run.
    Returns 0, or 1 when a target could not be read or a copy not deleted. Raises LockHeld."""
    config = _offsite_config(arguments)
    repository = Repository(config.repository.path)
    repository.ensure()
    status = 0
    plans: list[dict[str, object]] = []
    with RepositoryLock(repository.lock_path), staging_dir(repository.state_dir) as staging:
        for target_config in config.offsite:
            name = offsite_target_name(target_config)
            try:
                target = open_target(target_config)
                copies, _ = read_copies(target, staging)
            except TargetError as error:
                print(f"{name}: cannot be read: {error}")
                status = 1
                continue
            plan = plan_copies(
                copies, config.offsite_retention, now=datetime.now(UTC), timezone=config.schedule.display_zone
            )
            deleted, failures = apply_plan(target, copies, plan, dry_run=arguments.dry_run)
            status = max(status, 1 if failures else 0)
            if arguments.json:
                plans.append({"target": name, **plan.to_dict(), "deleted": deleted, "failures": failures})
                continue
            print(f"{name} ({target_config.url})")
            print("  " + plan_table(plan).replace("\n", "\n  "))
            verb = f"would delete {len(plan.to_delete)}" if arguments.dry_run else f"deleted {len(deleted)}"
            print(
                ("  dry run: " if arguments.dry_run else "  ")
                + f"{verb} copies"
                + "".join(f"\n  {f}" for f in failures)
            )
    if arguments.json:
        print(json.dumps({"dry_run": arguments.dry_run, "targets": plans}, indent=2))
    return status


def _offsite_config(arguments: argparse.Namespace) -> Config:
    config = load_config(arguments.config)
    if not config.offsite:
        raise ConfigError("no off-site target is configured (offsite: in the config)")
    return config


__all__ = ["LockHeld", "list_command", "prune_command", "register"]
