"""The reward command life cycle (pure): which status may follow which, and the reason a
command is waiting. Every status change the chain writer makes goes through ``check``.

``pending → awaiting_wallet | needs_authorization | queued | failed``;
``awaiting_wallet → pending`` (a wallet was linked) ``| queued``;
``needs_authorization → queued`` (the holder's permit arrived) ``| failed``;
``queued → submitted``; ``submitted → confirmed | failed | queued`` (its transaction was
dropped: it is sent again; the contract keeps it single); ``failed → pending`` (a retry).
"""

from __future__ import annotations

import uuid

from core.rewards.commands import RewardAction, RewardStatus

S = RewardStatus
ALLOWED: dict[RewardStatus, frozenset[RewardStatus]] = {
    S.pending: frozenset({S.awaiting_wallet, S.needs_authorization, S.queued, S.failed}),
    S.awaiting_wallet: frozenset({S.pending, S.queued}),
    S.needs_authorization: frozenset({S.queued, S.failed, S.pending}),
    S.queued: frozenset({S.submitted, S.pending}),
    S.submitted: frozenset({S.confirmed, S.failed, S.queued}),
    S.failed: frozenset({S.pending}),
    S.confirmed: frozenset(),
}
RETRYABLE = frozenset({S.failed, S.awaiting_wallet, S.needs_authorization})


class IllegalTransition(ValueError):
    """A status change the life cycle does not allow."""


def check(old: RewardStatus, new: RewardStatus) -> RewardStatus:
    """``new`` when ``old → new`` is allowed, else :class:`IllegalTransition`."""
    if new not in ALLOWED[old]:
        raise IllegalTransition(f"a {old} reward command cannot become {new}")
    return new


def resolution(
    command_id: uuid.UUID,
    action: RewardAction,
    game_id: str,
    player_id: str,
    wallet: str | None,
    authorized_by: str | None,
) -> tuple[RewardStatus, str | None, str | None]:
    """Where a pending command goes next: (status, recipient, reason).

    A mint goes to ``wallet``: the player's primary wallet (or, for the refund of a paid
    grant, the wallet that signed its burn), or waits for one. A burn needs the holder's
    permit; the holder is whoever signed it (a burn is never taken from a wallet without
    its signature)."""
    if action is RewardAction.mint:
        if wallet is None:
            return (
                S.awaiting_wallet,
                None,
                f"player {player_id!r} of game {game_id!r} has no linked app user with a "
                "primary wallet; it is minted once one is linked",
            )
        return S.queued, wallet, None
    if authorized_by is None:
        return (
            S.needs_authorization,
            None,
            f"the holder must authorize this burn: the app asks POST /v1/purchases/"
            f"{command_id}/intent for the EIP-2612 permit to sign, then posts the signature",
        )
    return S.queued, authorized_by, None
