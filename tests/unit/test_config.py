import re
from pathlib import Path

import pytest

from bot.bootstrap.adapters import ldap_endpoint
from bot.config import BotConfig, SecretSource, load_bot_config, load_settings
from bot.domain.errors import ConfigurationError

EXAMPLE = Path(__file__).parents[2] / "examples" / "kerberos-bot.toml"


def test_documented_example_is_valid() -> None:
    config = load_bot_config(EXAMPLE)
    assert [d.name for d in config.domains] == ["contoso.com", "emea.contoso.com"]
    child = config.domain("EMEA.contoso.com.")
    assert child is not None
    assert child.effective_base_dn == "DC=emea,DC=contoso,DC=com"
    assert child.configuration_dn == "CN=Configuration,DC=contoso,DC=com"
    assert child.windows.describe() == "0 22 * * mon-thu for 4 h; 0 6 * * sat for 8 h (Europe/Berlin)"
    assert config.domain("contoso.com").windows.windows == ()  # type: ignore[union-attr]  # no windows: always open


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ('{ cron = "0 22 * * funday", hours = 4 }', r"domains\.1.*change_windows: day-of-week: 'funday'"),
        ('{ cron = "0 22 * *", hours = 4 }', "has 4 fields"),
        ('{ cron = "0 22 * * mon", hours = 0 }', r"hours"),
        ('{ cron = "0 0 31 feb *", hours = 1 }', "never opens"),
    ],
)
def test_a_change_window_that_cannot_be_read_is_a_configuration_error(tmp_path: Path, new: str, message: str) -> None:
    _example_edit_is_refused(tmp_path, '{ cron = "0 22 * * mon-thu", hours = 4 }', new, message)


def test_a_time_zone_or_policy_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    _example_edit_is_refused(tmp_path, 'timezone = "Europe/Berlin"', 'timezone = "Europe/Atlantis"', "not a time zone")
    _example_edit_is_refused(tmp_path, 'outside_window = "wait"', 'outside_window = "later"', "outside_window")


def test_missing_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="KERBEROS_BOT_CONFIG: file .* does not exist"):
        load_bot_config(tmp_path / "nope.toml")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[domains]\nname=")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_bot_config(path)


def test_invalid_key_names_the_key(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('"ldaps://dc1.emea.contoso.com:636"', '"dc1.emea.contoso.com"')
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=r"domains\.1\.ldap_urls.*must start with ldaps://"):
        load_bot_config(path)


def test_forest_root_must_be_configured(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(EXAMPLE.read_text().replace('forest_root = "contoso.com"', 'forest_root = "other.com"'))
    with pytest.raises(ConfigurationError, match="forest_root 'other.com' is not a configured domain"):
        load_bot_config(path)


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_SECRET", "s3cret")
    assert SecretSource(env="X_SECRET").resolve("domains.0.bind_password") == "s3cret"
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    assert SecretSource(file=secret_file).resolve("k") == "from-file"
    monkeypatch.delenv("X_SECRET")
    with pytest.raises(ConfigurationError, match="domains.0.bind_password: environment variable X_SECRET"):
        SecretSource(env="X_SECRET").resolve("domains.0.bind_password")


def test_secret_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SecretSource(env="A", file=Path("/x"))


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        BotConfig.model_validate({"domains": [], "entra": {}, "kerberos_module": {}, "typo": 1})


def test_settings_error_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERBEROS_BOT_CONFIG", "")
    monkeypatch.setenv("SLACK_API_URL", "https://slack.example/api/")
    settings = load_settings()
    assert settings.slack_api_url == "https://slack.example/api/"
    with pytest.raises(ConfigurationError, match="environment variable LOG_LEVEL"):
        load_settings(log_level=["not", "a", "string"])


def _without_verification(text: str) -> str:
    start = text.index("[approvals.verification]")
    return text[:start]


def test_verified_approvals_are_on_by_default_for_the_dangerous_actions() -> None:
    from bot.bootstrap.policy import action_policies
    from bot.domain.approvals import Action

    policies = action_policies(load_bot_config(EXAMPLE))
    verified = {action for action, policy in policies.items() if policy.verified_approval}
    assert verified == {
        Action.ROTATE_FORCE,
        Action.REMOVE_TDO,
        Action.SETUP,
        Action.REMOVE_ALL,
        Action.EMERGENCY_ROTATE,
    }


def test_verified_approvals_without_the_verification_table_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(_without_verification(EXAMPLE.read_text()))
    with pytest.raises(
        ConfigurationError, match=r"verified approvals are on for rotate_force, remove_tdo, setup, remove_all"
    ):
        load_bot_config(path)


def test_verified_approval_can_be_turned_off_and_on_per_action(tmp_path: Path) -> None:
    from bot.bootstrap.policy import action_policies
    from bot.domain.approvals import Action

    text = _without_verification(EXAMPLE.read_text())
    for key in ("rotate_force", "remove_tdo", "remove_all"):
        text = text.replace(f"[approvals.{key}]\n", f"[approvals.{key}]\nverified_approval = false\n")
    text = text.replace(
        "[approvals.verification]", "[approvals.setup]\nverified_approval = false\n\n[approvals.verification]"
    )
    if "[approvals.setup]" not in text:
        text += "\n[approvals.setup]\nverified_approval = false\n"
    path = tmp_path / "c.toml"
    path.write_text(text)
    policies = action_policies(load_bot_config(path))
    # break-glass stays off (no approver group of its own) whatever the others say
    assert not policies[Action.EMERGENCY_ROTATE].approver_groups
    assert not any(p.verified_approval for a, p in policies.items() if a != Action.EMERGENCY_ROTATE)
    path.write_text(
        EXAMPLE.read_text().replace("[approvals.rotate]\n", "[approvals.rotate]\nverified_approval = true\n")
    )
    assert action_policies(load_bot_config(path))[Action.ROTATE].verified_approval


def test_identity_mapping_needs_upns(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(EXAMPLE.read_text().replace('U0123ABCD = "alice.admin@contoso.com"', 'U0123ABCD = "alice"'))
    with pytest.raises(ConfigurationError, match="identities.U0123ABCD: 'alice' is not a user principal name"):
        load_bot_config(path)


def test_a_table_that_sets_one_key_keeps_the_other_defaults(tmp_path: Path) -> None:
    from bot.bootstrap.policy import action_policies
    from bot.domain.approvals import Action

    text = EXAMPLE.read_text().replace(
        "[approvals.rotate_force]\napprovals_required = 2\n", "[approvals.rotate_force]\n"
    )
    text = text.replace(
        "[approvals.remove_tdo]\napprovals_required = 2\n", "[approvals.remove_tdo]\nttl_minutes = 30\n"
    )
    path = tmp_path / "c.toml"
    path.write_text(text)
    policies = action_policies(load_bot_config(path))
    assert policies[Action.ROTATE_FORCE].approvals_required == 2
    assert policies[Action.REMOVE_TDO].approvals_required == 2 and policies[Action.REMOVE_TDO].verified_approval
    assert policies[Action.ROTATE].approvals_required == 1


def test_a_rotation_interval_below_24_hours_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    text = re.sub(r"rotation_min_interval_hours = [0-9.]+", "rotation_min_interval_hours = 12", EXAMPLE.read_text())
    assert "rotation_min_interval_hours = 12" in text
    path.write_text(text)
    with pytest.raises(ConfigurationError, match="rotation_min_interval_hours"):
        load_bot_config(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("tls_validate = true", "tls_validate = false", "tls_validate = false would accept"),
        ('authority_host = "https://', 'authority_host = "http://', "must start with https://"),
        ('graph_url = "https://', 'graph_url = "http://', "must start with https://"),
        (
            "[approvals.verification.identities]\n",
            '[approvals.verification.identities]\nU0ONE = "bob@contoso.com"\nU0TWO = "Bob@contoso.com"\n',
            "both map to",
        ),
    ],
)
def test_settings_that_weaken_security_are_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    _example_edit_is_refused(tmp_path, old, new, message)


def _example_edit_is_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    """The documented example with ``old`` replaced by ``new`` fails to load, saying ``message``."""
    text = EXAMPLE.read_text()
    assert old in text
    path = tmp_path / "c.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigurationError, match=message):
        load_bot_config(path)


def test_an_inline_secret_is_refused_outside_the_sandbox(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    old = 'bind_password = { env = "CONTOSO_BIND_PASSWORD" }'
    assert old in text
    path = tmp_path / "c.toml"
    path.write_text(text.replace(old, 'bind_password = { value = "hunter2" }'))
    with pytest.raises(ConfigurationError, match=r"domains\.0\.bind_password: an inline secret"):
        load_bot_config(path)
    path.write_text("sandbox = true\n" + text.replace(old, 'bind_password = { value = "hunter2" }'))
    assert load_bot_config(path).sandbox


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("max_auth_age_minutes = 5", "freshness_minutes = 10", "freshness_minutes is gone"),
        ('public_url = "https://kerberos-bot.contoso.com"', "", "needs public_url"),
        ('public_url = "https://', 'public_url = "http://', "must start with https://"),
        ('public_url = "https://kerberos-bot.contoso.com"', 'public_url = "https://bot.test/?a=b"', "no query"),
        ('method = "auth_code"', 'method = "device_code"\nclient_secret = { env = "X" }', "needs a public client"),
        ('# auth_context = "c1"', 'auth_context = "c100"', "auth_context"),
        ('method = "auth_code"', 'method = "browser"', "method"),
    ],
    ids=["freshness-gone", "no-public-url", "http-public-url", "query", "device-code-secret", "context", "method"],
)
def test_verification_settings_are_checked(tmp_path: Path, old: str, new: str, message: str) -> None:
    _example_edit_is_refused(tmp_path, old, new, message)


def test_the_redirect_uri_follows_the_public_url_and_loopback_may_be_plain_http(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    path = tmp_path / "c.toml"
    path.write_text(
        text.replace('public_url = "https://kerberos-bot.contoso.com"', 'public_url = "http://127.0.0.1:3000/"')
    )
    verification = load_bot_config(path).approvals.verification
    assert verification is not None and verification.redirect_uri == "http://127.0.0.1:3000/auth/callback"
    assert verification.method == "auth_code" and verification.max_auth_age_minutes == 5


def test_second_with_first_belongs_to_the_rotations_only(tmp_path: Path) -> None:
    _example_edit_is_refused(
        tmp_path, "[approvals.remove_all]\n", "[approvals.remove_all]\nsecond_with_first = true\n", "only a rotation"
    )


def test_the_audit_sinks_are_read_and_a_plain_http_collector_is_refused(tmp_path: Path) -> None:
    config = load_bot_config(EXAMPLE)
    assert config.audit.hec is not None and config.audit.hec.token.env == "SPLUNK_HEC_TOKEN"
    assert config.audit.syslog is None and config.audit.forward_every_seconds == 10
    _example_edit_is_refused(tmp_path, 'url = "https://splunk', 'url = "http://splunk', "must start with https://")


MINIMAL = Path(__file__).parents[1] / "fixtures" / "minimal.toml"


def test_redis_signs_in_with_entra_id_where_the_redis_entra_table_says_so(tmp_path: Path) -> None:
    path = tmp_path / "kerberos-bot.toml"
    base = MINIMAL.read_text(encoding="utf-8")
    path.write_text(base + '\n[redis.entra]\nidentity = "managed_identity"\nclient_id = "5b6c"\n', encoding="utf-8")
    entra = load_bot_config(path).redis.entra
    assert (
        entra is not None and entra.identity == "managed_identity" and entra.scope == "https://redis.azure.com/.default"
    )
    path.write_text(base + '\n[redis.entra]\nidentity = "service_principal"\nclient_id = "5b6c"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="service_principal.*needs client_id and client_secret"):
        load_bot_config(path)
    assert load_bot_config(MINIMAL).redis.entra is None  # absent: REDIS_URL's own password, if any


def test_a_freeze_sign_in_needs_the_approvers_browser_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "kerberos-bot.toml"
    path.write_text(MINIMAL.read_text(encoding="utf-8") + "freeze_verified = true\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"freeze_verified needs the approvers' browser sign-in"):
        load_bot_config(path)


def test_a_bind_password_from_a_file_or_key_vault_is_read_again_when_refused_one_from_the_environment_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "bind"
    secret.write_text("first\n")
    base = MINIMAL.read_text(encoding="utf-8")
    path = tmp_path / "kerberos-bot.toml"
    inline = 'bind_password = { value = "not-used-here" }'
    path.write_text(base.replace(inline, f'bind_password = {{ file = "{secret}" }}'))
    endpoint = ldap_endpoint(load_bot_config(path).domains[0])
    assert endpoint.bind_password == "first" and endpoint.bind_password_again is not None
    secret.write_text("rotated\n")
    assert endpoint.bind_password_again() == "rotated"
    monkeypatch.setenv("BIND", "from-env")
    path.write_text(base.replace(inline, 'bind_password = { env = "BIND" }'))
    assert ldap_endpoint(load_bot_config(path).domains[0]).bind_password_again is None


def test_operator_mode_needs_its_operators_and_the_verification_table(tmp_path: Path) -> None:
    path = tmp_path / "kerberos-bot.toml"
    domain_says = MINIMAL.read_text(encoding="utf-8").replace(
        'bind_user = "reader@contoso.test"', 'bind_user = "reader@contoso.test"\nexecution = "operator"'
    )
    path.write_text(domain_says, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r'\[\[domains\]\] contoso.test execution = "operator": name who'):
        load_bot_config(path)
    path.write_text(domain_says + '\n[operators]\ngroups = ["S0KERBOPS"]\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"add an \[approvals.verification\] table"):
        load_bot_config(path)
    action_says = MINIMAL.read_text(encoding="utf-8").replace(
        "[approvals.setup]\n", '[approvals.setup]\nexecution = "operator"\n'
    )
    path.write_text(action_says + '\n[operators]\ngroups = ["not-a-group"]\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"'not-a-group' is not a Slack user group id"):
        load_bot_config(path)
    path.write_text(action_says, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r'\[approvals.setup\] execution = "operator"'):
        load_bot_config(path)
