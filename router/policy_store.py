"""The policy in force and its history: versioned changes with caller, time and note; rollback;
and hot reload of a policy file.

Versions are kept in memory (the last 1,000); version 1 is the policy the router started with.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from router.policy.config import PolicyConfig, policy_from_dict
from tandem.errors import Aborted, InvalidArgument, NotFound

log = logging.getLogger(__name__)

KEEP = 1000


@dataclasses.dataclass(frozen=True)
class PolicyVersion:
    version: int
    policy: PolicyConfig
    caller: str
    created_unix_s: float
    note: str = ""
    source: str = "admin"  # config | admin | rollback | file
    restored_version: int = 0


class PolicyStore:
    """Not thread-safe: the router's event loop owns it. `on_change` is called with each new version."""

    def __init__(
        self,
        initial: PolicyConfig,
        wall_clock: Callable[[], float] = time.time,
        on_change: Callable[[PolicyVersion], None] | None = None,
    ) -> None:
        self._wall = wall_clock
        self.on_change = on_change
        self._versions: list[PolicyVersion] = []
        self._append(initial, "config", "config", "")

    @property
    def current(self) -> PolicyVersion:
        return self._versions[-1]

    @property
    def policy(self) -> PolicyConfig:
        return self._versions[-1].policy

    def _append(
        self, policy: PolicyConfig, caller: str, source: str, note: str, restored: int = 0
    ) -> PolicyVersion:
        v = PolicyVersion(
            self._versions[-1].version + 1 if self._versions else 1,
            policy,
            caller,
            self._wall(),
            note,
            source,
            restored,
        )
        self._versions.append(v)
        del self._versions[:-KEEP]
        log.info("policy v%d by %s (%s)%s", v.version, caller, source, f": {note}" if note else "")
        if self.on_change:
            self.on_change(v)
        return v

    def set(
        self,
        changes: Mapping[str, Any],
        caller: str,
        note: str = "",
        expected_version: int = 0,
        source: str = "admin",
    ) -> PolicyVersion:
        """Apply `changes` (policy field → value) to the current policy as a new version.
        Raises InvalidArgument naming the field, Aborted on a stale expected_version."""
        if expected_version and expected_version != self.current.version:
            raise Aborted(
                f"policy is at version {self.current.version}, not {expected_version}: re-read and retry"
            )
        return self._append(policy_from_dict(changes, self.policy), caller, source, note)

    def replace(
        self, policy: PolicyConfig, caller: str, note: str = "", source: str = "admin"
    ) -> PolicyVersion:
        return self._append(policy, caller, source, note)

    def rollback(self, version: int, caller: str, note: str = "") -> PolicyVersion:
        """Make `version`'s policy current again, as a new version. NotFound when it is not kept."""
        old = next((v for v in self._versions if v.version == version), None)
        if old is None:
            raise NotFound(
                f"policy version {version} is unknown (kept: {self._versions[0].version}"
                f"..{self.current.version})"
            )
        return self._append(old.policy, caller, "rollback", note, restored=version)

    def history(self, limit: int = 0) -> list[PolicyVersion]:
        out = self._versions[::-1]
        return out[:limit] if limit > 0 else out


class PolicyFileWatcher:
    """Reloads a TOML policy file (its ``[policy]`` table, or its top-level keys) when its mtime
    changes. An invalid file is logged and leaves the policy in force unchanged."""

    def __init__(self, path: Path, store: PolicyStore, base: PolicyConfig) -> None:
        self.path = path
        self.store = store
        self.base = base  # the file's keys apply on top of the configured policy
        self._mtime: float | None = None
        self.last_error = ""

    def poll(self) -> PolicyVersion | None:
        """Check the file once; returns the new version when it was (re)loaded."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if mtime == self._mtime:
            return None
        self._mtime = mtime
        try:
            data = tomllib.loads(self.path.read_text())
            table = data.get("policy", data)
            if not isinstance(table, dict):
                raise InvalidArgument("policy", "must be a table")
            policy = policy_from_dict(table, self.base)
        except (OSError, tomllib.TOMLDecodeError, InvalidArgument) as exc:
            self.last_error = f"{self.path}: {exc}"
            log.error(
                "policy file not applied, keeping version %d: %s", self.store.current.version, self.last_error
            )
            return None
        self.last_error = ""
        if policy == self.store.policy:
            return None
        return self.store.replace(policy, "file", note=str(self.path), source="file")
