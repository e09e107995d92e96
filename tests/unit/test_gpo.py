import pytest

from bot.domain.gpo import KdcProxySetting


def test_value_has_the_spaces_microsoft_requires() -> None:
    setting = KdcProxySetting("11111111-2222-3333-4444-555555555555")
    assert setting.value_name == "KERBEROS.MICROSOFTONLINE.COM"
    assert setting.value == "<https login.microsoftonline.com:443:11111111-2222-3333-4444-555555555555/kerberos />"


@pytest.mark.parametrize(
    ("cloud", "host"),
    [(0, "login.microsoftonline.com"), (1, "login.partner.microsoftonline.cn"), (2, "login.microsoftonline.us")],
)
def test_each_cloud_has_its_own_fixed_login_host(cloud: int, host: str) -> None:
    assert KdcProxySetting("t", cloud).value == f"<https {host}:443:t/kerberos />"
