#!/usr/bin/env bash
# samba-pair.sh - one AD domain served by two Samba DCs that replicate, on two loopback addresses, for
# the sandbox and the replication tests. Adapted from the verified reference in
# shared/notes/samba/samba-join.sh (see shared/notes/samba-replication.md for the facts and pitfalls).
#
#   samba-pair.sh up      ROOT DC1_IP DC2_IP   # first time: provision dc1, join dc2, first two-way sync (~20 s),
#                                              #   then keep a pristine copy of the pair; later: restore it (~3 s)
#   samba-pair.sh down    ROOT                 # stop both (by pid file, never by name)
#   samba-pair.sh hold    ROOT dc2             # that DC stops pulling changes (it stays readable, and lags)
#   samba-pair.sh release ROOT dc2             # it pulls again (and catches up within a few seconds)
#   samba-pair.sh sync    ROOT DEST SOURCE     # DEST pulls all three naming contexts from SOURCE now
#   samba-pair.sh purge   ROOT                 # down, and delete the pair and its pristine copy
#
# ROOT/dc1 and ROOT/dc2 hold one DC each (its own smb.conf, database, TLS certificate, pid files);
# ROOT/hosts and ROOT/krb5.conf are shared by both. No DNS server, and /etc/hosts and /etc/resolv.conf
# are never touched: each samba runs in a private mount namespace in which ROOT/hosts is bind-mounted
# over /etc/hosts (replication finds its partner as <NTDS Settings GUID>._msdcs.<realm>).
#
# Env: SAMBA_REALM (CONTOSO.TEST) SAMBA_DOMAIN (its first label) SAMBA_ADMINPASS (Passw0rd!Passw0rd)
#      SAMBA_MAX_RUNTIME (7200: samba exits by itself after that, a CI safety net)
# Run as root (samba binds privileged ports; ip addr add on lo); Debian 12's samba packages.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
REALM=${SAMBA_REALM:-CONTOSO.TEST}
DOMAIN=${SAMBA_DOMAIN:-${REALM%%.*}}
PASS=${SAMBA_ADMINPASS:-Passw0rd!Passw0rd}
MAXRT=${SAMBA_MAX_RUNTIME:-7200}
# drepl and kcc are what replicate; rpc serves LSA (trusted domain objects) on the local ncalrpc socket
SERVICES="ldap, cldap, kdc, rpc, drepl, kcc, winbindd"
realm_lc=$(echo "$REALM" | tr 'A-Z' 'a-z')
base="DC=${realm_lc//./,DC=}"
log() { echo "[samba-pair $(date +%T)] $*" >&2; }

add_ip() {  # loopback only; recorded so that 'down' removes only what was added here
    local ip=$1 root=$2
    [ "$ip" = 127.0.0.1 ] && return
    if [[ " $(ip -4 -o addr show dev lo) " != *" inet $ip/"* ]]; then
        ip addr add "$ip/8" dev lo
        echo "$ip" >> "$root/added-ips"
    fi
}

patch_conf() {  # private paths, our services, quick replication, into [global] of the written smb.conf
    python3 - "$1/etc/smb.conf" "$1" "$2" "$SERVICES" <<'PY'
import sys
path, d, ip, services = sys.argv[1:5]
extra = f"""\tinterfaces = {ip}
\tbind interfaces only = yes
\tpid directory = {d}/run
\tncalrpc dir = {d}/run/ncalrpc
\tntp signd socket directory = {d}/run/ntp_signd
\twinbindd socket directory = {d}/run/winbindd
\tlog file = {d}/log/samba.log
\tmax log size = 10000
\tldap server require strong auth = no
\tserver services = {services}
\tname resolve order = host
\tdreplsrv:notify_interval = 1
\tdreplsrv:periodic_interval = 5
"""
drop = {'interfaces', 'bind interfaces only', 'pid directory', 'server services', 'name resolve order',
        'dreplsrv:notify_interval', 'dreplsrv:periodic_interval'}
out = []
for line in open(path):
    if line.strip().split('=')[0].strip().lower() in drop:
        continue
    out.append(line)
    if line.strip().lower() == '[global]':
        out.append(extra)
open(path, 'w').writelines(out)
PY
}

make_cert() {
    local dir=$1 ip=$2 name=$3 tls="$1/private/tls"
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$name.$realm_lc" \
        -addext "subjectAltName=DNS:$name.$realm_lc,DNS:$name,DNS:localhost,IP:$ip" \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
    cp "$tls/cert.pem" "$tls/ca.pem"; chmod 600 "$tls/key.pem"
}

ntds_guid() {
    local dir=$1 NAME; NAME=$(tr 'a-z' 'A-Z' < "$dir/name")
    ldbsearch -H "$dir/private/sam.ldb" -s base objectGUID \
        -b "CN=NTDS Settings,CN=$NAME,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,$base" \
        2>/dev/null | awk '/^objectGUID:/{print $2}'
}

provision() {
    local dir=$1 ip=$2 name=$3
    rm -rf "$dir"; mkdir -p "$dir/run" "$dir/log"; : > "$dir/empty.conf"
    samba-tool domain provision -s "$dir/empty.conf" --targetdir="$dir" --realm="$REALM" --domain="$DOMAIN" \
        --server-role=dc --dns-backend=NONE --host-name="$name" --adminpass="$PASS" \
        --option="interfaces=$ip" --option="bind interfaces only=yes" >"$dir/log/provision.log" 2>&1 \
        || { tail -20 "$dir/log/provision.log" >&2; exit 1; }
    patch_conf "$dir" "$ip"; make_cert "$dir" "$ip" "$name"
    echo "$ip" > "$dir/ip"; echo "$name" > "$dir/name"
    # Pitfall 1 of the notes: the first DC lacks its DRS replication SPN (samba_spnupdate would add it);
    # without it the other DC's inbound replication fails with WERR_INVALID_PARAMETER
    local NAME guid; NAME=$(echo "$name" | tr 'a-z' 'A-Z'); guid=$(ntds_guid "$dir")
    printf 'dn: CN=%s,OU=Domain Controllers,%s\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: E3514235-4B06-11D1-AB04-00C04FC2DCD2/%s/%s\nservicePrincipalName: GC/%s.%s/%s\n' \
        "$NAME" "$base" "$guid" "$realm_lc" "$name" "$realm_lc" "$realm_lc" > "$dir/spn.ldif"
    ldbmodify -H "$dir/private/sam.ldb" "$dir/spn.ldif" >/dev/null
}

join() {
    local dir=$1 ip=$2 name=$3 first=$4
    rm -rf "$dir"; mkdir -p "$dir/run" "$dir/log"; : > "$dir/empty.conf"
    # --server: LDAP and DRSUAPI go straight to the first DC's address; NTLM, so no KDC lookup is needed
    samba-tool domain join "$realm_lc" DC -s "$dir/empty.conf" --targetdir="$dir" --server="$first" \
        -U Administrator --password="$PASS" --use-kerberos=off --dns-backend=NONE \
        --option="netbios name=$name" --option="interfaces=$ip" --option="bind interfaces only=yes" \
        --option="realm=$REALM" --option="workgroup=$DOMAIN" >"$dir/log/join.log" 2>&1 \
        || { tail -30 "$dir/log/join.log" >&2; exit 1; }
    patch_conf "$dir" "$ip"; make_cert "$dir" "$ip" "$name"
    echo "$ip" > "$dir/ip"; echo "$name" > "$dir/name"
}

write_hosts() {  # ROOT/hosts and ROOT/krb5.conf from both DCs; rewritten in place (running DCs see it)
    local root=$1 hosts="" kdcs="" d
    for d in "$root/dc1" "$root/dc2"; do
        hosts+="$(cat "$d/ip") $(cat "$d/name").$realm_lc $(cat "$d/name") $(ntds_guid "$d")._msdcs.$realm_lc"$'\n'
        kdcs+="    kdc = $(cat "$d/ip")"$'\n'
    done
    printf '127.0.0.1 localhost\n%s' "$hosts" > "$root/hosts.new"; cat "$root/hosts.new" > "$root/hosts"
    rm -f "$root/hosts.new"
    printf '[libdefaults]\n    default_realm = %s\n    dns_lookup_kdc = false\n    dns_lookup_realm = false\n[realms]\n%s = {\n%s}\n[domain_realm]\n    .%s = %s\n' \
        "$REALM" "$REALM" "$kdcs" "$realm_lc" "$REALM" > "$root/krb5.conf"
    for d in "$root/dc1" "$root/dc2"; do cp "$root/krb5.conf" "$d/etc/krb5.conf"; done
    cat "$root/dc1/private/tls/cert.pem" "$root/dc2/private/tls/cert.pem" > "$root/ca-bundle.pem"
}

ours() {
    case "$(readlink "/proc/$1/exe" 2>/dev/null)" in /usr/sbin/samba|/usr/sbin/winbindd) ;; *) return 1 ;; esac
    local fd; for fd in /proc/"$1"/fd/*; do case "$(readlink "$fd" 2>/dev/null)" in "$2"/*) return 0 ;; esac; done
    return 1
}

start() {
    local dir=$1 root; root=$(dirname "$dir"); local ip; ip=$(cat "$dir/ip")
    rm -f "$dir/run/samba.pid"
    KRB5_CONFIG="$root/krb5.conf" unshare --mount --propagation private -- sh -c \
        'mount --bind "$1" /etc/hosts && exec samba -s "$2" -D -M single --maximum-runtime="$3"' \
        sh "$root/hosts" "$dir/etc/smb.conf" "$MAXRT"
    local i
    for ((i = 0; i < 300; i++)); do
        if python3 - "$ip" "Administrator@$realm_lc" "$PASS" "$dir/private/tls/cert.pem" <<'PY' 2>/dev/null; then
import socket, ssl, sys
host, user, pw, certfile = sys.argv[1:5]
def L(n): return bytes([n]) if n < 128 else bytes([0x81, n])
def tlv(t, v): return bytes([t]) + L(len(v)) + v
msg = tlv(0x30, tlv(0x02, b'\x01') + tlv(0x60, tlv(0x02, b'\x03') + tlv(0x04, user.encode()) + tlv(0x80, pw.encode())))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((host, 636), timeout=3))
if s.getpeercert(True) != ssl.PEM_cert_to_DER_cert(open(certfile).read()): sys.exit(3)
s.sendall(msg); r = s.recv(4096); j = r.index(b'\x0a\x01', r.index(b'\x61'))
sys.exit(0 if r[j + 2] == 0 else 2)
PY
            return
        fi
        sleep 0.2
    done
    log "$(cat "$dir/name") not ready after 60 s"; tail -20 "$dir/log/samba.log" >&2; exit 1
}

stop() {
    local dir=$1 f p
    for f in samba winbindd; do
        [ -f "$dir/run/$f.pid" ] || continue
        p=$(cat "$dir/run/$f.pid")
        if ours "$p" "$dir"; then kill -TERM "$p" 2>/dev/null || true; fi
        for _ in $(seq 100); do
            [ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] || break; sleep 0.1
        done
        rm -f "$dir/run/$f.pid"
    done
}

tool() { TOOL=(-s "$1/etc/smb.conf" --use-kerberos=off -U Administrator --password="$PASS"); }

sync_from() {  # Pitfall 2 of the notes: dc1 does not pull from dc2 until it pulled once by hand
    local dest=$1 source=$2 nc; tool "$dest"
    for nc in "$base" "CN=Configuration,$base" "CN=Schema,CN=Configuration,$base"; do
        samba-tool drs replicate "$(cat "$dest/ip")" "$source" "$nc" "${TOOL[@]}" >/dev/null 2>&1 \
            || { log "$(cat "$dest/name") could not pull $nc from $source"; exit 1; }
    done
}

hold() {  # +/-DISABLE_INBOUND_REPL
    tool "$1"
    samba-tool drs options "$(cat "$1/ip")" --dsa-option="$2DISABLE_INBOUND_REPL" "${TOOL[@]}" >/dev/null 2>&1
}

up() {
    local root=$1 ip1=$2 ip2=$3 t0=$SECONDS
    local template="$root.$ip1-$ip2.template.tgz"
    mkdir -p "$root"
    stop "$root/dc1"; stop "$root/dc2"
    # the one-DC instance of the domain (scripts/samba-dc.sh, ROOT without -pair) may hold the first address
    local single="${root%-pair}"
    if [ "$single" != "$root" ] && [ -f "$single/etc/smb.conf" ] && grep -q "interfaces = $ip1\$" "$single/etc/smb.conf"; then
        SAMBA_DIR="$single" SAMBA_REALM="$REALM" SAMBA_IFACE="$ip1" bash "$(dirname "$0")/samba-dc.sh" down
    fi
    add_ip "$ip1" "$root"; add_ip "$ip2" "$root"
    if [ -f "$template" ]; then
        rm -rf "$root/dc1" "$root/dc2"; tar -C "$root" -xzf "$template"
        write_hosts "$root"; start "$root/dc1"; start "$root/dc2"
        log "$REALM on $ip1 and $ip2 restored and running in $((SECONDS - t0)) s"
        return
    fi
    provision "$root/dc1" "$ip1" dc1
    : > "$root/hosts"; printf '127.0.0.1 localhost\n' > "$root/hosts"
    cp /dev/null "$root/krb5.conf"
    start "$root/dc1"
    join "$root/dc2" "$ip2" dc2 "$ip1"
    write_hosts "$root"
    start "$root/dc2"
    sync_from "$root/dc2" DC1; sync_from "$root/dc1" DC2
    # the pristine pair: both stopped, consistent with each other
    stop "$root/dc1"; stop "$root/dc2"
    tar -C "$root" --warning=no-file-ignored -czf "$template.part" dc1 dc2 && mv -f "$template.part" "$template"
    start "$root/dc1"; start "$root/dc2"
    log "$REALM provisioned on $ip1, joined on $ip2 and replicating in $((SECONDS - t0)) s"
}

down() {
    local root=$1 ip
    stop "$root/dc1"; stop "$root/dc2"
    if [ -f "$root/added-ips" ]; then
        while read -r ip; do ip addr del "$ip/8" dev lo 2>/dev/null || true; done < "$root/added-ips"
        rm -f "$root/added-ips"
    fi
}

cmd=${1:-}; shift || true
case "$cmd" in
    up)      up "$@" ;;
    down)    down "$@" ;;
    hold)    hold "$1/$2" + ;;
    release) hold "$1/$2" - ;;
    sync)    sync_from "$1/$2" "$3" ;;
    purge)   down "$1"; rm -rf "$1" "$1".*.template.tgz ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
esac
