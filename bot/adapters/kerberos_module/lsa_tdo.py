#!/usr/bin/python3
"""Create or delete the trusted domain object on a local Samba AD DC through MS-LSAD.

LDAP refuses to create trusted domain objects (MS-ADTS 6.1.6.9.7; Samba and Windows alike), so the
emulator does what the module does: LsarCreateTrustedDomainEx2 over the DC's local ncalrpc socket.
Runs under Debian's /usr/bin/python3 (python3-samba is built for it). Parameters, secrets included,
arrive as JSON on stdin, never on the command line; the result is one JSON line on stdout.

stdin: {"action": "create"|"delete", "conf": smb.conf, "user": ..., "password": ...,
        "name": ..., "flat": ..., "sid": ..., "trust_password": ..., "top_level_names": [...]}
"""

import json
import sys


def main() -> int:
    request = json.load(sys.stdin)
    try:
        import samba
        from samba import NTSTATUSError, credentials, param
        from samba.dcerpc import drsblobs, lsa, security
        from samba.trust_utils import CreateTrustedDomainRelax
    except ImportError as exc:
        print(json.dumps({"ok": False, "error": f"python3-samba is not installed ({exc})"}))
        return 1

    lp = param.LoadParm()
    lp.load(request["conf"])
    lp.set("interfaces", "lo")
    creds = credentials.Credentials()
    creds.guess(lp)
    creds.set_username(request["user"])
    creds.set_password(request["password"])

    def fail(exc: Exception) -> int:
        code = exc.args[0] & 0xFFFFFFFF if exc.args and isinstance(exc.args[0], int) else 0
        text = exc.args[1] if len(exc.args) > 1 else str(exc)
        print(json.dumps({"ok": False, "status": f"0x{code:08X}", "error": str(text)}))
        return 1

    def large(value: str) -> "lsa.StringLarge":
        s = lsa.StringLarge()
        s.string = value
        return s

    try:
        conn = lsa.lsarpc("ncalrpc:", lp, creds)
        policy = conn.OpenPolicy2("", lsa.ObjectAttribute(), security.SEC_FLAG_MAXIMUM_ALLOWED)
        if request["action"] == "delete":
            name = lsa.String()
            name.string = request["name"]
            handle = conn.OpenTrustedDomainByName(policy, name, security.SEC_STD_DELETE)
            conn.DeleteObject(handle)
            print(json.dumps({"ok": True}))
            return 0

        def auth_blob(password):  # type: ignore[no-untyped-def]
            blob = drsblobs.trustAuthInOutBlob()
            if password is None:
                blob.count = 0
                return blob
            clear = drsblobs.AuthInfoClear()
            secret = list(password.encode("utf-16-le"))
            clear.size = len(secret)
            clear.password = secret
            info = drsblobs.AuthenticationInformation()
            info.LastUpdateTime = samba.unix2nttime(samba.current_unix_time())
            info.AuthType = lsa.TRUST_AUTH_TYPE_CLEAR
            info.AuthInfo = clear
            array = drsblobs.AuthenticationInformationArray()
            array.count = 1
            array.array = [info]
            blob.count = 1
            blob.current = array
            return blob

        info = lsa.TrustDomainInfoInfoEx()
        info.domain_name = large(request["name"])
        info.netbios_name = large(request["flat"])
        info.sid = security.dom_sid(request["sid"])
        info.trust_direction = lsa.LSA_TRUST_DIRECTION_INBOUND
        info.trust_type = lsa.LSA_TRUST_TYPE_UPLEVEL
        info.trust_attributes = lsa.LSA_TRUST_ATTRIBUTE_FOREST_TRANSITIVE
        CreateTrustedDomainRelax(
            conn, policy, info, security.SEC_STD_DELETE, auth_blob(request["trust_password"]), auth_blob(None)
        )
        names = [request["name"]] + [n for n in request["top_level_names"] if n.lower() != request["name"].lower()]
        records = []
        for tln in names:
            record = lsa.ForestTrustRecord()
            record.flags, record.type, record.time = 0, lsa.LSA_FOREST_TRUST_TOP_LEVEL_NAME, 0
            record.forest_trust_data = large(tln)
            records.append(record)
        domain_info = lsa.ForestTrustDomainInfo()
        domain_info.domain_sid = security.dom_sid(request["sid"])
        domain_info.dns_domain_name = large(request["name"])
        domain_info.netbios_domain_name = large(request["flat"])
        record = lsa.ForestTrustRecord()
        record.flags, record.type, record.time = 0, lsa.LSA_FOREST_TRUST_DOMAIN_INFO, 0
        record.forest_trust_data = domain_info
        records.append(record)
        forest_info = lsa.ForestTrustInformation()
        forest_info.count, forest_info.entries = len(records), records
        try:
            conn.lsaRSetForestTrustInformation(
                policy, large(request["name"]), lsa.LSA_FOREST_TRUST_DOMAIN_INFO, forest_info, 0
            )
        except NTSTATUSError as exc:
            # Samba stores the data but answers NOT_FOUND when winbindd is not running.
            if (exc.args[0] & 0xFFFFFFFF) != 0xC0000034:
                raise
        print(json.dumps({"ok": True, "top_level_names": names}))
        return 0
    except NTSTATUSError as exc:
        return fail(exc)


if __name__ == "__main__":
    sys.exit(main())
