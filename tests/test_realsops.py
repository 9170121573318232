"""The real-sops test kit works: two recipients decrypt, a third identity is refused (exit 128)."""

from tests.realsops import decrypt_file, encrypt_file


def test_roundtrip(tmp_path, age_keys):
    a,b,c = age_keys
    f = tmp_path/"enc-x.secret.values.yaml"
    encrypt_file(f, "a: secret1\n", [a.recipient, b.recipient])
    assert decrypt_file(f, a).stdout == "a: secret1\n"
    assert decrypt_file(f, b).returncode == 0
    assert decrypt_file(f, c).returncode == 128
