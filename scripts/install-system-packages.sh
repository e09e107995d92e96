#!/usr/bin/env bash
# Debian packages the sandbox and the tests need: a Samba AD DC (the test directory), python3-samba
# (LSA calls that create trusted domain objects), redis-server (embedded Redis when none runs) and
# redis-sentinel (the failover tests start their own primary, replica and sentinels),
# libkrb5-dev and a C compiler (pip builds python-gssapi and krb5, which pypsrp's Kerberos needs) and
# krb5-user (kinit/klist: the Kerberos remoting tests and operators' own checks), faketime (a test
# runs the bot with its clock off, to see the KDC's clock-skew error), chromium + chromium-driver +
# libnss3-tools (certutil): the approvers' browser sign-in is tested in a real headless Chromium
# that trusts the test CA through an NSS database.
# Idempotent: installs only what is missing. Needs root (CI and these machines run as root).
set -euo pipefail
packages=(samba samba-dsdb-modules samba-vfs-modules samba-ad-provision winbind python3-samba
          ldb-tools openssl iproute2 redis-server redis-sentinel libkrb5-dev krb5-user gcc libc6-dev python3-dev
          faketime chromium chromium-driver libnss3-tools)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "[install] system packages present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "[install] missing Debian packages: ${missing[*]}; run as root (or: sudo $0)" >&2
    exit 1
fi
echo "[install] apt-get install ${missing[*]}"
apt-get update -q >/dev/null
# policy-rc.d on these images keeps the packaged services from starting; ours run privately.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
