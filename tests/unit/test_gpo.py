from bot.domain.gpo import KdcProxySetting


def test_value_has_the_spaces_microsoft_requires() -> None:
    setting = KdcProxySetting("11111111-2222-3333-4444-555555555555")
    assert setting.value_name == "KERBEROS.MICROSOFTONLINE.COM"
    assert setting.value == "<https login.microsoftonline.com:443:11111111-2222-3333-4444-555555555555/kerberos />"


def test_sovereign_cloud_uses_its_own_login_host() -> None:
    assert (
        KdcProxySetting("t", "https://login.microsoftonline.us").value
        == "<https login.microsoftonline.us:443:t/kerberos />"
    )
