"""Every refusal of wallet sign-in and player links has a stable code and its kind's status."""

from __future__ import annotations

import pytest

from api.errors import status_of
from core.identity import players, siwe, wallets
from core.platform.errors import DomainError

EXPECTED = {
    siwe.MalformedMessage: ("siwe_malformed", 422),
    siwe.WrongDomain: ("siwe_wrong_domain", 422),
    siwe.WrongUri: ("siwe_wrong_uri", 422),
    siwe.WrongChain: ("siwe_wrong_chain", 422),
    siwe.Expired: ("siwe_expired", 422),
    siwe.NotYetValid: ("siwe_not_yet_valid", 422),
    siwe.IssuedInFuture: ("siwe_issued_in_future", 422),
    siwe.BadSignature: ("siwe_bad_signature", 403),
    wallets.NonceUnknown: ("siwe_nonce_unknown", 422),
    wallets.NonceExpired: ("siwe_nonce_expired", 422),
    wallets.NonceUsed: ("siwe_nonce_used", 409),
    wallets.InvalidAddress: ("invalid_address", 422),
    wallets.WalletTaken: ("wallet_linked_to_another_user", 409),
    wallets.UnknownWallet: ("wallet_not_found", 404),
    wallets.ChainUnavailable: ("chain_unavailable", 503),
    players.UnknownGame: ("game_not_found", 404),
    players.LinkCodeUnknown: ("link_code_unknown", 404),
    players.LinkCodeExpired: ("link_code_expired", 422),
    players.LinkCodeUsed: ("link_code_used", 409),
    players.LinkCodeWrongGame: ("link_code_wrong_game", 403),
    players.PlayerTaken: ("player_linked_to_another_user", 409),
    players.UnknownPlayerLink: ("player_link_not_found", 404),
}


@pytest.mark.parametrize("kind", EXPECTED, ids=lambda k: k.__name__)
def test_code_and_status(kind: type[DomainError]) -> None:
    refusal = kind("why")
    assert (refusal.code, status_of(refusal)) == EXPECTED[kind]


def test_codes_are_unique() -> None:
    codes = [code for code, _ in EXPECTED.values()]
    assert len(codes) == len(set(codes))
