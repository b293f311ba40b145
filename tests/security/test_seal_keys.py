"""The seal key file (`federator serve --seal-key-file`, security/seal_keys.py): its keys outlive the TLS serving key
that seals and page tokens were keyed from alone, the first seals and every one verifies (a rotation), the serving
key's derivation still verifies (what 0.20.0 sealed), and a file that cannot be used stops the start in one line
naming the flag and the problem."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from federator.security.seal_keys import SealKeyError, load_seal_keys, parse_seal_keys
from federator.server import paging
from federator.server.paging import STALE, PageTokenError, TokenSeal
from federator.server.seals import OTHER_KEY, UNSEALED, WRONG, Seals

A, B = bytes(range(32)), bytes(range(100, 140))
LINE_A, LINE_B = base64.b64encode(A).decode(), base64.b64encode(B).decode()
SERVING, RENEWED = b"the serving key of 0.20.0", b"the key of the renewed certificate"
PID = "a-1.g2.east-1"


def test_the_first_key_seals_and_every_one_verifies() -> None:
    keys = parse_seal_keys(f"# seal keys\n\n{LINE_B}\n  {LINE_A}  \n")
    assert keys.keys == (B, A) and keys.sealing == B


@pytest.mark.parametrize("line", [LINE_A, LINE_A.rstrip("="), base64.urlsafe_b64encode(A).decode()],
                         ids=["padded", "unpadded", "url-safe"])
def test_base64_as_openssl_or_a_url_safe_encoder_writes_it(line: str) -> None:
    assert parse_seal_keys(line).keys == (A,)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "no key in the file"),
    ("# only a comment\n\n", "no key in the file"),
    (f"{LINE_A}\nnot base64!\n", "line 2: not a base64 key"),
    (f"{LINE_A}\nAAAAA\n", "line 2: not a base64 key"),
    (base64.b64encode(b"short key").decode(), "line 1: a key of 9 bytes; a key needs at least 32"),
    (f"{LINE_A}\n{LINE_B}\n{LINE_A}\n", "line 3: the same key as an earlier line"),
    ("\n".join(base64.b64encode(bytes([i]) * 32).decode() for i in range(17)), "line 17: more than 16 keys"),
])
def test_a_bad_file_is_refused_naming_the_line_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(SealKeyError, match=f"^--seal-key-file: {problem}"):
        parse_seal_keys(text)


def test_a_missing_unreadable_or_binary_file_is_refused_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(SealKeyError, match=r"^--seal-key-file .*nope: cannot read the file: No such file"):
        load_seal_keys(tmp_path / "nope")
    with pytest.raises(SealKeyError, match=r"^--seal-key-file .*: cannot read the file: Is a directory"):
        load_seal_keys(tmp_path)
    raw = tmp_path / "raw"
    raw.write_bytes(b"\xff\xfe" + os.urandom(30))  # the key's bytes themselves, not base64
    with pytest.raises(SealKeyError, match="not UTF-8 text .*not the raw key bytes"):
        load_seal_keys(raw)
    big = tmp_path / "big"
    big.write_text(f"{LINE_A}\n" + "#" * 70_000)
    with pytest.raises(SealKeyError, match="larger than 65536 bytes"):
        load_seal_keys(big)


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--metrics-listen",
                           "127.0.0.1:0", "--listen", "127.0.0.1:0", *args], capture_output=True, text=True,
                          timeout=60, env=env, check=False)


@pytest.mark.parametrize(("content", "problem"), [
    (None, "cannot read the file: No such file or directory"),
    ("c2hvcnQ=\n", "line 1: a key of 5 bytes; a key needs at least 32 random bytes"),
    ("a key, not base64\n", "line 1: not a base64 key"),
])
def test_serve_refuses_a_bad_key_file_in_one_line_before_it_opens_the_store(tmp_path: Path, content: str | None,
                                                                            problem: str) -> None:
    path = tmp_path / "seal-keys"
    if content is not None:
        path.write_text(content)
    done = _serve("--db", str(tmp_path / "f.db"), "--seal-key-file", str(path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"federator serve: --seal-key-file {path}: {problem}" or \
        done.stderr.strip().startswith(f"federator serve: --seal-key-file {path}: {problem}"), done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "f.db").exists()


def test_a_seal_under_any_key_of_the_ring_verifies_and_names_why_not() -> None:
    live = Seals(A, required=True)
    seal = live.launch(PID, "a-1", 2, "east-1")
    rotated = Seals(B, required=True, also=(A, RENEWED))  # B first now; A kept below it
    assert rotated.launched(seal, PID, "a-1", 2, "east-1")
    assert not rotated.launched(seal, PID, "a-1", 2, "west-1")  # under an older key, still bound to its words
    assert rotated.launch(PID, "a-1", 2, "east-1") != seal and rotated.key_id != live.key_id  # B seals
    dropped = Seals(B, required=True, also=(RENEWED,))
    assert not dropped.launched(seal, PID, "a-1", 2, "east-1")
    assert dropped.reason(seal) == OTHER_KEY and "another key" in dropped.why_not(seal)
    assert dropped.reason("") == UNSEALED
    assert dropped.reason(f"s1.{dropped.key_id}.{'A' * 43}") == WRONG


def test_a_seal_of_the_serving_keys_derivation_still_verifies_with_a_key_file() -> None:
    """What 0.20.0 (or a federator without the flag) sealed: verified while the serving key is the same one."""
    old = Seals(SERVING, required=True)
    cancel = old.cancel(PID, "east-1")
    upgraded = Seals(A, required=True, also=(SERVING,))
    assert upgraded.ended(cancel, PID, "east-1")
    assert not Seals(A, required=True, also=(RENEWED,)).ended(cancel, PID, "east-1")  # renewed since: not any more


def test_a_page_token_opens_under_any_key_of_the_ring_and_is_stale_under_none() -> None:
    token = TokenSeal(A).seal(["x", 1], "jobs.list\x00alice")
    assert TokenSeal(B, also=(A,)).open(token, "jobs.list\x00alice") == ["x", 1]
    with pytest.raises(PageTokenError) as err:
        TokenSeal(B, also=(RENEWED,)).open(token, "jobs.list\x00alice")
    assert str(err.value) == STALE
    made = TokenSeal(B, also=(A,)).seal([1], "b")  # B seals: a federator keyed by B alone opens it, A's does not
    assert TokenSeal(B).open(made, "b") == [1]
    with pytest.raises(PageTokenError, match="no longer holds"):
        TokenSeal(A).open(made, "b")


def test_page_tokens_and_seals_are_different_keys_of_one_file() -> None:
    """One secret for the operator to keep; each use its own derivation (HKDF info), so no token is a seal."""
    assert Seals(A).key_id.encode() != TokenSeal(A).key_id.hex().encode()
    before = paging.use_secret(A)
    try:
        assert paging.encode_token("x", bound="b") != Seals(A).cancel("x", "b")
    finally:
        paging.use_seal(before)
