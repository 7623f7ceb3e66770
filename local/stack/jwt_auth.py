"""The local stack's identity provider and API Gateway's JWT authorizer, offline.

A local RSA key signs the tokens `python -m local token` mints; the front door verifies them the way an HTTP API JWT
authorizer does (RS256 signature by a known `kid`, `iss` equal to the issuer, `aud` — or `client_id` when there is
no `aud` — among the audiences, `exp` required and in the future, `nbf`/`iat` not in the future) and hands the
handler the claims as API Gateway does: every value as a string.
"""

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
DEFAULT_TTL_SECONDS = 3600


class InvalidToken(Exception):
    """The request carries no acceptable token; API Gateway answers 401 and never calls the function."""


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class SigningKey:
    """An RSA key pair; kept as PEM in a git-ignored folder so tokens minted by the CLI match the running stack."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        numbers = self.public_key.public_numbers()
        self.jwk = {"kty": "RSA", "alg": ALGORITHM, "use": "sig", "n": _b64(numbers.n), "e": _b64(numbers.e)}
        # RFC 7638 thumbprint as the key id, like most identity providers.
        canonical = json.dumps({k: self.jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
        self.jwk["kid"] = self.kid

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, path: Path) -> "SigningKey":
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA private key")
            return cls(loaded)
        key = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}


@dataclass(frozen=True)
class TokenIssuer:
    """Mints the tokens the front end would get from the practice's identity provider."""

    key: SigningKey
    issuer: str
    audience: str
    practice_claim: str = "practice_id"

    def mint(
        self,
        practice_id: str | None,
        user_id: str = "local-user",
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        **overrides: Any,
    ) -> str:
        """A signed token; `overrides` replace or add claims (None removes one), e.g. aud="other", exp=0."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()),
            "token_use": "access",
        }
        if practice_id is not None:
            claims[self.practice_claim] = practice_id
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, self.key.private_key, algorithm=ALGORITHM, headers={"kid": self.key.kid})


@dataclass(frozen=True)
class JwtAuthorizer:
    """API Gateway's JWT authorizer: identity source `$request.header.Authorization`, one issuer, its audiences."""

    key: SigningKey
    issuer: str
    audiences: Sequence[str]
    identity_source: str = "$request.header.Authorization"

    def token_from(self, headers: Mapping[str, str]) -> str:
        prefix = "$request.header."
        if not self.identity_source.startswith(prefix):
            raise ValueError(f"unsupported identity source {self.identity_source}")
        value = headers.get(self.identity_source.removeprefix(prefix).lower(), "").strip()
        if not value:
            raise InvalidToken("no token")
        # API Gateway accepts the token with or without the Bearer scheme.
        scheme, _, rest = value.partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest else value

    def verify(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """The token's claims, or InvalidToken."""
        token = self.token_from(headers)
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM or header.get("kid") != self.key.kid:
                raise InvalidToken("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key.public_key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        audiences = claims.get("aud", claims.get("client_id"))
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or not set(audiences) & set(self.audiences):
            raise InvalidToken("audience not accepted")
        return claims


def claims_as_api_gateway_passes_them(claims: Mapping[str, Any]) -> dict[str, str]:
    """HTTP API hands every claim to the function as a string (a list as "[a b]")."""
    passed = {}
    for name, value in claims.items():
        if isinstance(value, bool):
            passed[name] = str(value).lower()
        elif isinstance(value, list):
            passed[name] = "[" + " ".join(str(item) for item in value) + "]"
        elif isinstance(value, dict):
            passed[name] = json.dumps(value, separators=(",", ":"))
        else:
            passed[name] = str(value)
    return passed


def scopes_of(claims: Mapping[str, Any]) -> list[str] | None:
    scope = claims.get("scope", claims.get("scp"))
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list):
        return [str(item) for item in scope]
    return None
