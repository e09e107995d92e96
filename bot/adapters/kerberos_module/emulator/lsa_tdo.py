#!/usr/bin/python3
"""Create, rotate or delete the trusted domain object on a local Samba AD DC.

LDAP refuses to create trusted domain objects (MS-ADTS 6.1.6.9.7; Samba and Windows alike), so the
emulator does what the module does: LsarCreateTrustedDomainEx2 over the DC's local ncalrpc socket.
Runs under Debian's /usr/bin/python3 (python3-samba is built for it). Parameters, secrets included,
arrive as JSON on stdin, never on the command line; the result is one JSON line on stdout.

Rotation: Samba 4.17 answers every LSA set of the trust's auth info with NT_STATUS_OK and changes
nothing (it stores trustAuthIncoming/Outgoing only when a call adds a trust direction; verified in
../shared/notes/samba-replication.md), so "rotate" does what Samba's LSA server does internally: a
modify of trustAuthIncoming (and trustAuthOutgoing, where the object has one) in the DC's own
sam.ldb with the system session, the new key as current and the old one as previous. Its proof is
the TDO's replication metadata, which the emulator reads back over LDAPS.

stdin: {"action": "create"|"rotate"|"delete", "conf": smb.conf, "user": ..., "password": ...,
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
    if request["action"] == "rotate":  # the system session of the local sam.ldb: no credentials
        return int(rotate(lp, request))
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


def rotate(lp, request):  # type: ignore[no-untyped-def]
    import ldb
    import samba
    from samba.auth import system_session
    from samba.dcerpc import drsblobs, lsa
    from samba.ndr import ndr_pack, ndr_unpack
    from samba.samdb import SamDB

    samdb = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
    found = samdb.search(
        base="CN=System," + str(samdb.get_default_basedn()),
        expression=f"(&(objectClass=trustedDomain)(trustPartner={ldb.binary_encode(request['name'])}))",
        attrs=["trustAuthIncoming", "trustAuthOutgoing"],
    )
    if len(found) != 1:
        print(json.dumps({"ok": False, "error": f"no trusted domain object for {request['name']}"}))
        return 1
    tdo = found[0]
    secret = list(request["trust_password"].encode("utf-16-le"))
    message = ldb.Message(tdo.dn)
    rotated = []
    for attribute in ("trustAuthIncoming", "trustAuthOutgoing"):
        if attribute not in tdo:
            continue  # an inbound-only trust has no outgoing keys
        old = ndr_unpack(drsblobs.trustAuthInOutBlob, tdo[attribute][0])
        clear = drsblobs.AuthInfoClear()
        clear.size, clear.password = len(secret), secret
        info = drsblobs.AuthenticationInformation()
        info.LastUpdateTime = samba.unix2nttime(samba.current_unix_time())
        info.AuthType, info.AuthInfo = lsa.TRUST_AUTH_TYPE_CLEAR, clear
        current = drsblobs.AuthenticationInformationArray()
        current.count, current.array = 1, [info]
        blob = drsblobs.trustAuthInOutBlob()
        blob.count, blob.current = 1, current
        if old.count:
            blob.previous = old.current  # the old key stays valid as the previous one, as on Windows
        message[attribute] = ldb.MessageElement(ndr_pack(blob), ldb.FLAG_MOD_REPLACE, attribute)
        rotated.append(attribute)
    if not rotated:
        print(json.dumps({"ok": False, "error": "the trusted domain object holds no trust keys"}))
        return 1
    samdb.modify(message)
    print(json.dumps({"ok": True, "rotated": rotated}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
