"""`federator certs` and the TLS flags of the other commands, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def federator(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_init_issue_and_revoke(tmp_path: Path) -> None:
    d = str(tmp_path / "certs")
    out = federator("certs", "init", "--dir", d, "--server-name", "federator.example.org")
    assert out.returncode == 0, out.stderr
    assert "federator.example.org" in out.stdout
    again = federator("certs", "init", "--dir", d)
    assert again.returncode == 1 and "--force" in again.stderr
    assert federator("certs", "issue", "--dir", d, "--cluster", "east-1").returncode == 0
    assert (tmp_path / "certs" / "clusters" / "east-1.crt").exists()
    bad = federator("certs", "issue", "--dir", d, "--cluster", "East_1")
    assert bad.returncode == 1 and "--cluster" in bad.stderr
    assert federator("certs", "revoke", "--dir", d, "--cluster", "east-1").returncode == 0
    assert (tmp_path / "certs" / "revoked.txt").read_text().startswith("cluster east-1")
    bad = federator("certs", "revoke", "--dir", d, "--serial", "not-hex")
    assert bad.returncode == 2 and "--serial" in bad.stderr


@pytest.mark.parametrize("command", [["get", "jobs"], ["serve", "--db", "x.db"],
                                     ["agent", "--cluster", "east-1", "--sim", "examples/fleet.yaml"]],
                         ids=["client", "serve", "agent"])
def test_without_credentials_tls_is_still_the_default_and_the_error_says_what_to_pass(
        command: list[str], tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    if command[0] == "agent":
        command = [*command[:-1], str(root / command[-1])]
    if command[0] == "serve":
        command = [*command[:-1], str(tmp_path / "x.db")]
    out = federator(*command, "--server", "127.0.0.1:1") if command[0] != "serve" else federator(*command)
    assert out.returncode == 2, out.stderr
    assert "--certs-dir" in out.stderr and "--insecure" in out.stderr


@pytest.mark.parametrize(("args", "said"), [
    (["init", "--days", "-5"], "federator certs init: --days: must be 1 to 36500, got -5"),
    (["init", "--days", "0"], "federator certs init: --days: must be 1 to 36500, got 0"),
    (["init", "--server-name", "bad name"],
     "federator certs init: --server-name: must be a DNS name or an IP address, got 'bad name'"),
    (["issue", "--cluster", "x", "--days", "999999999"],
     "federator certs issue: --days: must be 1 to 36500, got 999999999"),
    (["issue", "--user", "bob", "--group", "a,b"],
     "federator certs issue: --group: must be a lower-case DNS name of at most 63 characters, got 'a,b'"),
], ids=["init-negative-days", "init-zero-days", "init-server-name", "issue-days-overflow", "issue-group"])
def test_bad_certificate_parameters_are_one_line_naming_the_flag(tmp_path: Path, args: list[str], said: str) -> None:
    d = tmp_path / "certs"
    if args[0] == "issue":
        assert federator("certs", "init", "--dir", str(d)).returncode == 0
    out = federator("certs", args[0], "--dir", str(d), *args[1:])
    assert out.returncode != 0
    assert out.stderr.strip() == said
    if args[0] == "init":
        assert not d.exists()  # nothing half-made that would need --force


@pytest.mark.parametrize(("trust", "said"), [
    ("providers: [1]\n", "must be a mapping with one field, providers, of provider names to {ca, clusters, revoked, "
                             "regions, clusterRegions, maxAccelerators, maxCpu, maxMemory, minPrice, maxPrice}"),
    ("a: [\n", "not valid YAML: expected the node content, but found '<stream end>' (line 2, column 1)"),
], ids=["not-a-trust-file", "not-yaml"])
def test_adding_a_provider_to_a_trust_file_that_is_not_one_names_the_file(tmp_path: Path, trust: str,
                                                                          said: str) -> None:
    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    (d / "trust.yaml").write_text(trust)
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*")
    assert out.returncode == 1
    assert out.stderr.strip() == f"federator certs provider: {d / 'trust.yaml'}: {said}"


def test_a_providers_regions_are_written_and_kept_when_it_is_added_again(tmp_path: Path) -> None:
    """Re-running `certs provider` (more clusters, say) without --region must not widen the provider to any
    region; a bad --region is refused before trust.yaml is touched."""
    from federator.security.pki import CertsDir
    from federator.security.trust import load_trust

    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--region", "east", "--region", "north")
    assert out.returncode == 0, out.stderr
    assert "it certifies clusters acme-*, in regions east, north" in out.stdout
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--clusters", "edge-7")
    assert out.returncode == 0, out.stderr
    certs = CertsDir(d)
    assert load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"].regions == ("east", "north")
    before = certs.trust.read_text()
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--region", "East")
    assert out.returncode == 1
    assert out.stderr.strip() == ("federator certs provider: --region: must be a region name as agents give it (a "
                                  "lower-case DNS name of at most 63 characters), got 'East'")
    assert certs.trust.read_text() == before


def test_a_providers_bounds_are_kept_when_it_is_added_again(tmp_path: Path) -> None:
    """The operator writes the bounds by hand; re-running `certs provider` must not drop them (any room again)."""
    from federator.security.pki import CertsDir
    from federator.security.trust import load_trust

    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    assert federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*").returncode == 0
    certs = CertsDir(d)
    certs.trust.write_text(certs.trust.read_text().replace(
        "clusters:", "maxAccelerators: 512\n    maxCpu: 4096\n    maxMemory: 32Ti\n    clusters:"))
    assert load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"].max_accelerators == 512
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--clusters", "edge-7")
    assert out.returncode == 0, out.stderr
    acme = load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"]
    assert (acme.max_accelerators, acme.max_cpu_milli, acme.max_memory_bytes) == (512, 4_096_000, 32 * 2**40)
    out = federator("certs", "provider", "--dir", str(d), "--name", "globex", "--clusters", "gx-*")
    assert out.returncode == 0 and "in any region" in out.stdout


def test_issue_server_renews_the_federators_certificate_under_the_same_ca_keeping_its_names(tmp_path: Path) -> None:
    from federator.security.pki import CertsDir, identity_of, load_cert, server_names_of
    from federator.security.tls import server_files

    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d), "--server-name", "fed.example.org").returncode == 0
    ca, old = (d / "ca.crt").read_bytes(), load_cert(d / "server.crt")
    out = federator("certs", "issue", "--dir", str(d), "--server", "--days", "30")
    assert out.returncode == 0, out.stderr
    assert "server.crt" in out.stdout and "SIGHUP" in out.stdout
    new = load_cert(d / "server.crt")
    assert (d / "ca.crt").read_bytes() == ca  # the CA, and every agent's and user's certificate, stay
    assert new.serial_number != old.serial_number
    assert server_names_of(new) == ("localhost", "127.0.0.1", "fed.example.org")
    assert str(identity_of(new)) == "server federator"
    assert 29 <= (new.not_valid_after_utc - new.not_valid_before_utc).days <= 30
    server_files(CertsDir(d)).read()  # a pair, chained to the CA: what the federator's reload accepts
    assert oct((d / "server.key").stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == []  # no temporary file left

    named = federator("certs", "issue", "--dir", str(d), "--server", "--host", "fed-2.example.org")
    assert named.returncode == 0, named.stderr
    assert server_names_of(load_cert(d / "server.crt")) == ("localhost", "127.0.0.1", "fed-2.example.org")


@pytest.mark.parametrize(("args", "said"), [
    (["--server", "--host", "not a host"],
     "federator certs issue: --host: must be a DNS name or an IP address, got 'not a host'"),
    (["--cluster", "east-1", "--host", "fed.example.org"],
     "federator certs issue: --host: names the federator's certificate; it goes with --server"),
    (["--server", "--provider", "acme"], "federator certs issue: --provider: not for the federator's certificate"),
], ids=["bad-host", "host-without-server", "server-with-provider"])
def test_issue_server_refuses_what_does_not_fit_naming_the_flag(tmp_path: Path, args: list[str], said: str) -> None:
    d = str(tmp_path / "certs")
    assert federator("certs", "init", "--dir", d).returncode == 0
    before = (tmp_path / "certs" / "server.crt").read_bytes()
    out = federator("certs", "issue", "--dir", d, *args)
    assert out.returncode != 0 and said in out.stderr, out.stderr
    assert (tmp_path / "certs" / "server.crt").read_bytes() == before


def test_a_renewal_replaces_each_file_whole_the_key_before_the_certificate(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The running federator polls these files: it must see the old file or the new one, never a half-written
    one, and once the new certificate is there its key must be too."""
    from federator.security import pki

    certs = pki.CertsDir(tmp_path / "certs")
    pki.init_ca(certs)
    old = {p.name: p.read_bytes() for p in (certs.server_key, certs.server_cert)}
    replaced: list[tuple[str, bool]] = []
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        target = Path(dst)
        replaced.append((target.name, target.read_bytes() == old.get(target.name)))  # untouched until now
        real_replace(src, dst)

    monkeypatch.setattr(pki.os, "replace", replace)
    pki.issue(certs, pki.Identity(pki.IdentityKind.SERVER, "federator"), server_names=("localhost",))
    assert replaced == [("server.key", True), ("server.crt", True)]


def test_certs_provider_sets_the_capacity_bounds_and_warns_without_one(tmp_path: Path) -> None:
    """Outside QA (M4): the documented way to add a provider could not bound what its clusters claim, so one fake
    report at price 0 drew every tenant's jobs. The flags write the bounds; without --max-accelerators it warns."""
    from federator.security.pki import CertsDir
    from federator.security.trust import load_trust

    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--max-accelerators", "512", "--max-cpu", "4096", "--max-memory", "32Ti")
    assert out.returncode == 0, out.stderr
    assert "with at most 512 accelerators a cluster" in out.stdout and "warning" not in out.stderr
    certs = CertsDir(d)
    acme = load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"]
    assert (acme.max_accelerators, acme.max_cpu_milli, acme.max_memory_bytes) == (512, 4_096_000, 32 * 2**40)
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--max-accelerators", "256")  # a new bound replaces the old; the others stay
    acme = load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"]
    assert (acme.max_accelerators, acme.max_cpu_milli) == (256, 4_096_000)
    out = federator("certs", "provider", "--dir", str(d), "--name", "globex", "--clusters", "gx-*")
    assert out.returncode == 0 and "any number of accelerators" in out.stdout
    assert "warning: provider globex's clusters may report any room" in out.stderr
    before = certs.trust.read_text()
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--max-accelerators", "-1")
    assert out.returncode == 1 and out.stderr.strip() == (
        "federator certs provider: --max-accelerators: must be a whole number of at least 0, got -1")
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--max-memory", "lots")
    assert out.returncode == 1 and "maxMemory: must be a quantity" in out.stderr
    assert certs.trust.read_text() == before


def test_issue_refuses_a_cluster_its_provider_may_not_certify_naming_the_patterns_and_the_flag(tmp_path: Path) -> None:
    """Outside provider QA (F12): `certs issue --provider prov --cluster rogue-1` issued a certificate although
    trust.yaml beside it binds prov to member-*; the federator then refused the agent at every connect."""
    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    assert federator("certs", "provider", "--dir", str(d), "--name", "prov", "--clusters", "member-*",
                     "--max-accelerators", "64").returncode == 0
    out = federator("certs", "issue", "--dir", str(d), "--provider", "prov", "--cluster", "rogue-1")
    assert out.returncode == 1, out.stdout
    assert "'rogue-1' matches none of the patterns provider 'prov' is bound to" in out.stderr
    assert "(member-*)" in out.stderr
    assert "--outside-trust" in out.stderr and "Traceback" not in out.stderr
    assert not (d / "providers" / "prov" / "clusters" / "rogue-1.crt").exists()
    ok = federator("certs", "issue", "--dir", str(d), "--provider", "prov", "--cluster", "member-b")
    assert ok.returncode == 0, ok.stderr
    forced = federator("certs", "issue", "--dir", str(d), "--provider", "prov", "--cluster", "rogue-1",
                       "--outside-trust")
    assert forced.returncode == 0, forced.stderr
    assert (d / "providers" / "prov" / "clusters" / "rogue-1.crt").exists()
    alone = federator("certs", "issue", "--dir", str(d), "--cluster", "fed-1", "--outside-trust")
    assert alone.returncode == 2 and "--outside-trust: goes with --provider" in alone.stderr


def test_a_certs_folder_that_cannot_be_written_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """`--dir` under a file (or read-only, or full) was a traceback from the first write; now every action says
    which file it could not write and why, and exits 1."""
    (tmp_path / "afile").write_text("")
    out = federator("certs", "init", "--dir", str(tmp_path / "afile" / "certs"))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == f"federator certs init: cannot write {tmp_path}/afile/certs/ca.key: Not a directory"
    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    (d / "clusters").write_text("")  # where the cluster's files would go
    out = federator("certs", "issue", "--dir", str(d), "--cluster", "east-1")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"cannot write {d}/clusters/east-1.key" in out.stderr


def test_certs_bundle_without_a_ca_or_room_for_the_bundle_is_one_line(tmp_path: Path) -> None:
    out = federator("certs", "bundle", "--dir", str(tmp_path / "nowhere"))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == f"federator certs bundle: {tmp_path}/nowhere/ca.crt: No such file or directory"
    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    (d / "trust-bundle.pem").mkdir()
    out = federator("certs", "bundle", "--dir", str(d))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "trust-bundle.pem: Is a directory" in out.stderr


def test_certs_provider_sets_the_price_bounds_and_refuses_a_bad_one_leaving_the_file(tmp_path: Path) -> None:
    """secqa61 M1: a provider's price claim decided every `prefer: cheapest` job; --min-price/--max-price bound it."""
    from federator.security.pki import CertsDir
    from federator.security.trust import load_trust

    d = tmp_path / "certs"
    assert federator("certs", "init", "--dir", str(d)).returncode == 0
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--min-price", "1.80", "--max-price", "4.10")
    assert out.returncode == 0, out.stderr
    assert "  price: 1.8 to 4.1 an accelerator-hour" in out.stdout
    certs = CertsDir(d)
    acme = load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"]
    assert (acme.min_price, acme.max_price) == (1.8, 4.1)
    before = certs.trust.read_text()
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--min-price", "5")  # above the kept maxPrice
    assert out.returncode == 1 and "providers.acme.minPrice: 5 is above maxPrice 4.1" in out.stderr, out.stderr
    assert certs.trust.read_text() == before
    out = federator("certs", "provider", "--dir", str(d), "--name", "acme", "--clusters", "acme-*",
                    "--clusters", "edge-7")
    assert out.returncode == 0, out.stderr  # re-run without the flags: the bounds stay
    acme = load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"]
    assert (acme.min_price, acme.max_price) == (1.8, 4.1)
