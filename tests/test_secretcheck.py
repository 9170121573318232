"""sops's selectors as secretcheck reads them (facts/sops.md §4: any key on a value's path decides)."""

from __future__ import annotations

import pytest

from provision import secretcheck
from provision.secretcheck import Selector

PASSWORD = ("binderhub-service", "config", "DockerRegistry", "password")


@pytest.mark.parametrize(
    ("settings", "encrypted"),
    [
        (None, True),  # sops's default: unencrypted_suffix _unencrypted
        ({"unencrypted_suffix": "_unencrypted"}, True),
        ({"encrypted_regex": "^(data|stringData)$"}, False),  # the Kubernetes Secret rule
        ({"encrypted_regex": "^(password|client_secret)$"}, True),
        ({"encrypted_regex": "^binderhub-service$"}, True),  # a parent key on the path is enough
        ({"unencrypted_regex": "^config$"}, False),
        ({"unencrypted_regex": "^note$"}, True),
        ({"encrypted_suffix": "_secret"}, False),
        ({"encrypted_comment_regex": "sops:enc"}, False),  # provision's values carry no comment
        ({"unencrypted_comment_regex": "sops:plain"}, True),
        ({"encrypted_regex": r"^data\z"}, None),  # a Go regexp Python does not read: left to the ciphertext check
    ],
)
def test_selector_verdicts(settings: dict[str, str] | None, encrypted: bool | None) -> None:
    assert secretcheck.selector_of(settings).encrypts(PASSWORD) is encrypted


def test_only_the_credentials_are_required_to_be_encrypted() -> None:
    doc = {"jupyterhub": {"imagePullSecret": {"create": True, "username": "u", "password": "p"}},
           "binderhub-service": {"config": {"DockerRegistry": {"password": "p"}}}}  # fmt: skip
    paths = secretcheck.secret_paths(doc)
    assert paths == [("jupyterhub", "imagePullSecret", "password"), PASSWORD]
    assert secretcheck.left_in_plaintext(Selector("encrypted_regex", "^DockerRegistry$"), paths) == [paths[0]]


def test_plaintext_in_ciphertext() -> None:
    doc = {"a": {"password": "ENC[AES256_GCM,data:x,type:str]"}, "b": {"password": "clear"}, "c": {"password": 5}}
    paths = [("a", "password"), ("b", "password"), ("c", "password"), ("missing", "password")]
    assert secretcheck.plaintext_in(doc, paths) == [("b", "password"), ("c", "password")]
