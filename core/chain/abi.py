"""Calls to the Stride contracts, pure: calldata from the committed ABIs
(``contracts/artifacts``), return values decoded, and revert data named.

A revert reason is one of ``Error(string)`` (``require`` messages), ``Panic(uint256)`` (with
the compiler's meaning of its code) or a custom error of any committed ABI, decoded with its
arguments (``NotTokenOwner(collection=0x…, tokenId=7)``), so an app user reads why the
contract would refuse instead of a selector.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from core.chain.decode import ARTIFACTS_DIR

ERROR_STRING = "08c379a0"  # Error(string)
PANIC = "4e487b71"  # Panic(uint256)
# The compiler's panic codes (Solidity docs, "Panic via assert and error via require").
PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupted storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialized function",
}


class AbiMismatch(ValueError):
    """A call names a function the contract's ABI does not have (a programming error)."""


def _type_of(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of a parameter (tuples spelled out)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_of(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@dataclass(frozen=True)
class Function:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def selector(self) -> bytes:
        return keccak(text=f"{self.name}({','.join(self.inputs)})")[:4]


@dataclass(frozen=True)
class CustomError:
    name: str
    inputs: tuple[tuple[str, str], ...]  # (name, type)

    @property
    def selector(self) -> str:
        return keccak(text=f"{self.name}({','.join(t for _, t in self.inputs)})")[:4].hex()


@cache
def _abi(contract: str, artifacts_dir: Path = ARTIFACTS_DIR) -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = json.loads((artifacts_dir / f"{contract}.json").read_text())["abi"]
    return abi


def function(contract: str, name: str, arity: int | None = None) -> Function:
    """One function of a committed ABI (``arity`` picks among overloads)."""
    for item in _abi(contract):
        if item.get("type") != "function" or item["name"] != name:
            continue
        if arity is not None and len(item["inputs"]) != arity:
            continue
        return Function(
            name,
            tuple(_type_of(i) for i in item["inputs"]),
            tuple(_type_of(o) for o in item["outputs"]),
        )
    raise AbiMismatch(f"{contract} has no function {name} with {arity} arguments")


def calldata(contract: str, name: str, *args: Any) -> str:
    """``0x`` calldata of ``contract.name(*args)``."""
    fn = function(contract, name, len(args))
    return "0x" + (fn.selector + abi_encode(list(fn.inputs), list(args))).hex()


def decode_result(contract: str, name: str, arity: int, result: str) -> tuple[Any, ...]:
    """The return values of an ``eth_call`` of ``contract.name``."""
    fn = function(contract, name, arity)
    return tuple(abi_decode(list(fn.outputs), bytes.fromhex(result.removeprefix("0x"))))


@cache
def custom_errors() -> dict[str, CustomError]:
    """selector (hex, no 0x) -> custom error, over every committed artifact."""
    errors: dict[str, CustomError] = {}
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        for item in _abi(path.stem):
            if item.get("type") == "error":
                error = CustomError(
                    item["name"], tuple((i["name"], _type_of(i)) for i in item["inputs"])
                )
                errors.setdefault(error.selector, error)
    return errors


def _shown(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Revert:
    """Why a call reverted: ``name`` (``Error``, ``Panic``, a custom error, or ``unknown``),
    its decoded arguments, and one line for people."""

    name: str
    args: tuple[tuple[str, Any], ...]
    reason: str


def decode_revert(data: str | None) -> Revert:
    """Name the revert behind ``data`` (the ``0x`` hex a node returns with a reverted call)."""
    raw = (data or "0x").removeprefix("0x")
    if not raw:
        return Revert("unknown", (), "reverted without a reason")
    selector, body = raw[:8], bytes.fromhex(raw[8:]) if len(raw) % 2 == 0 else b""
    try:
        if selector == ERROR_STRING:
            (message,) = abi_decode(["string"], body)
            return Revert("Error", (("message", message),), str(message))
        if selector == PANIC:
            (code,) = abi_decode(["uint256"], body)
            meaning = PANIC_CODES.get(code, "unknown panic code")
            return Revert("Panic", (("code", code),), f"Panic(0x{code:02x}): {meaning}")
        error = custom_errors().get(selector)
        if error is not None:
            values = abi_decode([t for _, t in error.inputs], body) if error.inputs else ()
            args = tuple((n, v) for (n, _), v in zip(error.inputs, values, strict=True))
            shown = ", ".join(f"{n}={_shown(v)}" for n, v in args)
            return Revert(error.name, args, f"{error.name}({shown})")
    except (DecodingError, ValueError, OverflowError):
        pass
    return Revert("unknown", (), f"reverted with unrecognised data 0x{raw[:200]}")


def checksum(address: str) -> str:
    return to_checksum_address(address)


def addresses_equal(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()
