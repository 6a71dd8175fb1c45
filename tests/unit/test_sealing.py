"""Sealing: keys as text, one recording key per recording, frames that open only in their place."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pytest_retrace.errors import RecordingError
from pytest_retrace.format import sealing, tape


def test_a_frame_sealed_for_a_public_key_opens_only_with_its_private_key() -> None:
    private = sealing.PrivateKey.generate()
    sealer = sealing.Sealer.fresh(private.public)
    frames = [sealer.seal(f"frame {i}".encode()) for i in range(3)]
    opener = sealing.Opener(private.agree(sealer.envelope.ephemeral))
    assert [opener.open(i, f) for i, f in enumerate(frames)] == [b"frame 0", b"frame 1", b"frame 2"]
    assert opener.open(1, frames[0]) is None  # out of its place
    stranger = sealing.PrivateKey.generate()
    assert sealing.Opener(stranger.agree(sealer.envelope.ephemeral)).open(0, frames[0]) is None


def test_every_recording_gets_its_own_key() -> None:
    public = sealing.PrivateKey.generate().public
    first, second = sealing.Sealer.fresh(public), sealing.Sealer.fresh(public)
    assert first.key != second.key and first.envelope.ephemeral != second.envelope.ephemeral
    assert first.seal(b"same") != second.seal(b"same")


def test_a_sealer_goes_on_in_another_process_from_where_the_file_stops() -> None:
    private = sealing.PrivateKey.generate()
    sealer = sealing.Sealer.fresh(private.public)
    sealer.seal(b"a")
    resumed = sealing.Sealer.from_json(sealer.to_json(), count=1)
    opener = sealing.Opener(private.agree(resumed.envelope.ephemeral))
    assert opener.open(1, resumed.seal(b"b")) == b"b"


def test_keys_read_as_text_as_pem_and_from_files(tmp_path: Path) -> None:
    private = sealing.PrivateKey.generate()
    assert sealing.PrivateKey.parse(private.text()).raw == private.raw
    assert sealing.PublicKey.parse(private.public.text()).raw == private.public.raw
    pem_key = X25519PrivateKey.from_private_bytes(private.raw)
    pem = pem_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    assert sealing.PrivateKey.parse(pem).raw == private.raw
    pub_pem = pem_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert sealing.PublicKey.parse(pub_pem).id == private.public.id
    path = tmp_path / "k"
    path.write_text(private.text() + "\n")
    assert sealing.PrivateKey.parse(str(path)).raw == private.raw


@pytest.mark.parametrize("text, problem", [
    ("retrace-private-key-1:AAAA", "is a private key"),
    ("retrace-public-key-1:short", "not a pytest-retrace key"),
    ("ssh-ed25519 AAAAC3Nza", "not a pytest-retrace public key"),
])
def test_a_wrong_public_key_is_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(sealing.KeyProblem, match=problem):
        sealing.PublicKey.parse(text)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(sealing.KeyProblem, match="no key file"):
        sealing.add_private_key_file(str(tmp_path / "absent"))


def test_a_sealed_tape_keeps_only_collection_metadata_readable(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    private = sealing.PrivateKey.generate()
    header = {"format": tape.FORMAT, "kind": "process", "created_at": "now", "tags": {"team": "a"}, "pin": None,
              "environ": {"DB": "postgresql://u:pw@h/db"}, "argv": ["app.py", "--user", "alice"], "cwd": "/srv/app",
              "hash_seed": 1, "entry": {"script": "app.py"}}
    path = tmp_path / "r.retrace"
    writer = tape.TapeWriter(path, header, background=False, sealer=sealing.Sealer.fresh(private.public))
    writer.close({"status": 0, "events": 0})
    data = path.read_bytes()
    for secret in (b"postgresql", b"alice", b"/srv/app"):
        assert secret not in data
    monkeypatch.delenv(sealing.PRIVATE_ENV, raising=False)
    with pytest.raises(RecordingError, match="needs the recording key"):
        tape.read_recording(path)
    monkeypatch.setenv(sealing.PRIVATE_ENV, private.text())
    rec = tape.read_recording(path)
    assert rec.status == tape.TapeStatus.COMPLETE
    assert rec.header["argv"] == ["app.py", "--user", "alice"]
    assert rec.end == {"status": 0, "events": 0}


def test_a_sealed_recordings_readable_header_holding_encoded_values_is_corrupt_unread(tmp_path: Path) -> None:
    """The readable header comes before anything authenticates it: its values are never decoded (a crafted one
    held thousands of exceptions, each rebuilt before the reader asked for the key)."""
    import msgpack

    from pytest_retrace.format import codec

    private = sealing.PrivateKey.generate()
    readable = {"format": tape.FORMAT, "kind": "process", "tags": {"x": msgpack.ExtType(codec.EXT_EXCEPTION, b"\x90")},
                "sealed": sealing.Sealer.fresh(private.public).envelope.to_header()}
    path = tmp_path / "r.retrace"
    path.write_bytes(tape._PREAMBLE.pack(tape.MAGIC, 1, 2) + tape.encode_frame(tape.FRAME_HEADER, readable))
    with pytest.raises(RecordingError, match="readable header that holds encoded values at offset 12"):
        tape.read_recording(path)
