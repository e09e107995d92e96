#!/usr/bin/env bash
# samba-dc.sh - a private Samba AD DC (Debian 12 packages) for kerberos-bot's tests and sandbox.
# Adapted from the verified reference in shared/notes/samba/samba-up.sh.
#
#   ./samba-dc.sh install   # install the missing Debian packages (samba, python3-samba for LSA, iproute2, ...)
#   ./samba-dc.sh up        # install if needed, provision (first time ~10 s; later from the pristine template), start
#   ./samba-dc.sh down      # stop it (by pid file; never by name)
#   ./samba-dc.sh reset     # down + restore the pristine domain from the template (~2 s, no re-provision) + up
#   ./samba-dc.sh purge     # down + delete the instance and its template
#   ./samba-dc.sh status
#
# Environment (all optional):
#   SAMBA_DIR        private dir for everything (default /tmp/kerberos-bot-samba/<realm in lower case>)
#   SAMBA_REALM      default CONTOSO.TEST        SAMBA_DOMAIN  default: the realm's first label (CONTOSO)
#   SAMBA_ADMINPASS  default Passw0rd!Passw0rd   (must satisfy AD complexity rules)
#   SAMBA_IFACE      the address samba binds to, default 127.0.0.1 ("lo" binds every address on lo). Use an IP such as 127.0.0.2
#                    (it is added to lo automatically) when 127.0.0.1:389/636 is already taken.
#   SAMBA_MODEL      samba process model: single (default, ~1/3 the memory) or prefork (Samba default)
#   SAMBA_SERVICES   "default": ldap, cldap, kdc, rpc, winbindd - LDAP/LDAPS/GC, Kerberos, LSA over the local
#                      ncalrpc socket (TDO create/delete, forest-trust info); winbindd on a private socket.
#                      No smbd, nothing under /run/samba, so several instances can coexist. ~90 MiB PSS.
#                    "lean": ldap, cldap, kdc, rpc (1 process, ~40 MiB); as above except that
#                      lsaRSetForestTrustInformation returns NT_STATUS_OBJECT_NAME_NOT_FOUND (it still stores).
#                    "smb": default + s3fs (smbd, SMB/named pipes, ports 139/445). smbd's libwbclient ignores
#                      "winbindd socket directory" and always uses /run/samba/winbindd, so winbindd is left on
#                      that path: only one such instance per machine (or per mount namespace).
#                    "full": Samba's default list as written by provision (adds nbt, wrepl, drepl, kcc, ...).
#   SAMBA_NETNS      run samba inside this existing network namespace (ip netns exec NAME ...)
#   SAMBA_MAX_RUNTIME  samba exits by itself after this many seconds (default 7200) - CI safety net
#   SAMBA_WAIT       seconds to wait for readiness (default 60)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

REALM=${SAMBA_REALM:-CONTOSO.TEST}
DIR=${SAMBA_DIR:-/tmp/kerberos-bot-samba/$(echo "$REALM" | tr 'A-Z' 'a-z')}
DOMAIN=${SAMBA_DOMAIN:-${REALM%%.*}}   # NetBIOS name: the realm's first label
PASS=${SAMBA_ADMINPASS:-Passw0rd!Passw0rd}
IFACE=${SAMBA_IFACE:-127.0.0.1}
MODEL=${SAMBA_MODEL:-single}
SERVICES=${SAMBA_SERVICES:-default}
MAXRT=${SAMBA_MAX_RUNTIME:-7200}
WAIT=${SAMBA_WAIT:-60}
NS=()
[ -n "${SAMBA_NETNS:-}" ] && NS=(ip netns exec "$SAMBA_NETNS")
CONF="$DIR/etc/smb.conf"
realm_lc=$(echo "$REALM" | tr 'A-Z' 'a-z')
case "$IFACE" in lo) HOST=127.0.0.1 ;; *) HOST=$IFACE ;; esac

log() { echo "[samba-up] $*" >&2; }

HERE=$(cd "$(dirname "$0")" && pwd)
# samba-ad-provision holds the schema (only a Recommends of samba); python3-samba is what /usr/bin/python3 needs
# for LSA (trusted domain objects); iproute2 gives ip/ss (extra loopback address, port-clash check)
PACKAGES=(samba samba-dsdb-modules samba-vfs-modules samba-ad-provision winbind python3-samba openssl iproute2 ldb-tools)

do_install() {
    local p st missing=()
    for p in "${PACKAGES[@]}"; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [ "$st" = "install ok installed" ] || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then return; fi
    if [ "$(id -u)" -ne 0 ]; then log "missing Debian packages: ${missing[*]}; run as root"; exit 1; fi
    local t0=$SECONDS
    apt-get update -q >/dev/null
    # policy-rc.d on these images keeps the packaged services from starting; ours runs privately
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    log "installed ${missing[*]} in $((SECONDS - t0)) s"
}

TEMPLATE="$DIR.template.tgz"

do_provision() {
    [ -f "$DIR/private/sam.ldb" ] && { log "already provisioned in $DIR"; return; }
    if [ -f "$TEMPLATE" ]; then
        rm -rf "$DIR"; mkdir -p "$(dirname "$DIR")"
        tar -C "$(dirname "$DIR")" -xzf "$TEMPLATE"
        log "restored pristine $REALM from $TEMPLATE"
        return
    fi
    rm -rf "$DIR"; mkdir -p "$DIR/run" "$DIR/log"
    : > "$DIR/empty.conf"          # do not inherit /etc/samba/smb.conf
    local t0=$SECONDS
    samba-tool domain provision -s "$DIR/empty.conf" --targetdir="$DIR" \
        --realm="$REALM" --domain="$DOMAIN" --server-role=dc --dns-backend=NONE \
        --host-name=dc1 --adminpass="$PASS" > "$DIR/log/provision.log" 2>&1 \
        || { tail -20 "$DIR/log/provision.log" >&2; exit 1; }
    # private paths so that a second instance (or Debian's own services) never collide
    local extra
    extra=$(cat <<EOF
	interfaces = $IFACE
	bind interfaces only = yes
	pid directory = $DIR/run
	ncalrpc dir = $DIR/run/ncalrpc
	ntp signd socket directory = $DIR/run/ntp_signd
	log file = $DIR/log/samba.log
	max log size = 10000
	ldap server require strong auth = no
EOF
)
    case "$SERVICES" in
        default) extra+=$'\n\tserver services = ldap, cldap, kdc, rpc, winbindd'
                 extra+=$'\n\twinbindd socket directory = '"$DIR/run/winbindd" ;;
        lean)    extra+=$'\n\tserver services = ldap, cldap, kdc, rpc'
                 extra+=$'\n\twinbindd socket directory = '"$DIR/run/winbindd" ;;
        # smbd's libwbclient ignores "winbindd socket directory" and always uses /run/samba/winbindd
        smb)     extra+=$'\n\tserver services = ldap, cldap, kdc, rpc, s3fs, winbindd'; mkdir -p /run/samba ;;
        full)    mkdir -p /run/samba ;;
        *)       log "unknown SAMBA_SERVICES=$SERVICES"; exit 2 ;;
    esac
    # the provisioned smb.conf has one [global] section: drop its interfaces/services lines, append ours
    python3 - "$CONF" "$extra" <<'PY'
import sys
path, extra = sys.argv[1], sys.argv[2]
out = []
for line in open(path):
    key = line.strip().split('=')[0].strip().lower()
    if key in ('interfaces', 'bind interfaces only', 'pid directory') or (key == 'server services' and 'server services' in extra):
        continue
    out.append(line)
    if line.strip().lower() == '[global]':
        out.append(extra + '\n')
open(path, 'w').writelines(out)
PY
    # self-signed cert with SANs (dc1.<realm>, localhost, the bind IP) - saves samba's ~3 s RSA-4096 keygen and
    # lets tests verify TLS properly with ca_certs_file=$DIR/private/tls/ca.pem
    local tls="$DIR/private/tls"; mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=dc1.$realm_lc" \
        -addext "subjectAltName=DNS:dc1.$realm_lc,DNS:dc1,DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:$HOST" \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
    cp "$tls/cert.pem" "$tls/ca.pem"; chmod 600 "$tls/key.pem"
    # the pristine copy (samba never ran on it) makes 'reset' ~2 s; written aside and renamed so a killed run
    # never leaves half a template behind
    tar -C "$(dirname "$DIR")" -czf "$TEMPLATE.part" "$(basename "$DIR")" && mv -f "$TEMPLATE.part" "$TEMPLATE"
    log "provisioned $REALM in $((SECONDS - t0)) s ($DIR; pristine copy in $TEMPLATE)"
}

# a pid from our pid file is only ours if it runs a samba binary with files open under $DIR (guards pid reuse)
ours() {
    case "$(readlink "/proc/$1/exe" 2>/dev/null)" in /usr/sbin/samba|/usr/sbin/smbd|/usr/sbin/winbindd) ;; *) return 1 ;; esac
    local fd
    for fd in /proc/"$1"/fd/*; do
        case "$(readlink "$fd" 2>/dev/null)" in "$DIR"/*) return 0 ;; esac
    done
    return 1
}

# (no "cmd | grep -q": with pipefail, grep -q exiting early can SIGPIPE the writer and flip the result)
has_ip() { [[ " $("${NS[@]}" ip -4 -o addr show dev lo) " == *" inet $IFACE/"* ]]; }

is_running() { [ -f "$DIR/run/samba.pid" ] && ours "$(cat "$DIR/run/samba.pid")"; }

do_start() {
    if is_running; then log "already running (pid $(cat "$DIR/run/samba.pid"))"; return; fi
    # the same domain served by two DCs (scripts/samba-pair.sh, e.g. for the demo) may hold this address
    if [ -f "$DIR-pair/dc1/ip" ] && [ "$(cat "$DIR-pair/dc1/ip")" = "$HOST" ]; then
        log "stopping the two-DC $REALM on $HOST first"
        bash "$HERE/samba-pair.sh" down "$DIR-pair"
    fi
    if [ "$IFACE" != lo ] && ! has_ip; then
        "${NS[@]}" ip addr add "$IFACE/8" dev lo      # e.g. 127.0.0.2 - loopback only, removed by 'down'
        mkdir -p "$DIR/run"; echo "$IFACE" > "$DIR/run/added-ip"
    fi
    # refuse to start if someone else already listens there: the readiness probe would talk to *them*
    local busy=""
    command -v ss >/dev/null || log "warning: 'ss' (iproute2) missing, cannot check for port clashes"
    busy=$("${NS[@]}" ss -Hltn 2>/dev/null | awk -v h="$HOST" '{split($4,a,":"); p=a[length(a)]; ip=substr($4,1,length($4)-length(p)-1)}
             (p==389 || p==636 || p==88) && (ip==h || ip=="0.0.0.0" || ip=="*" || ip=="[::]") {print $4}' | tr '\n' ' ' || true)
    if [ -n "$busy" ]; then
        log "ports already in use on $HOST: $busy - stop the other server or use SAMBA_IFACE=127.0.0.2 (or SAMBA_NETNS)"
        exit 1
    fi
    sed -i "s|^\tinterfaces = .*|\tinterfaces = $IFACE|" "$CONF"    # SAMBA_IFACE may differ from provision time
    local t0=$SECONDS
    rm -f "$DIR/run/samba.pid"
    "${NS[@]}" samba -s "$CONF" -D -M "$MODEL" --maximum-runtime="$MAXRT"
    # ready = TLS handshake on 636 succeeds and an LDAP simple bind works
    local i rc
    for ((i = 0; i < WAIT * 5; i++)); do
        "${NS[@]}" python3 - "$HOST" "Administrator@$realm_lc" "$PASS" "$DIR/private/tls/cert.pem" <<'PY' 2>/dev/null && rc=0 || rc=$?
import socket, ssl, sys
host, user, pw, certfile = sys.argv[1:5]
def ber_len(n): return bytes([n]) if n < 128 else bytes([0x81, n])
def tlv(t, v): return bytes([t]) + ber_len(len(v)) + v
bind = tlv(0x60, tlv(0x02, b'\x03') + tlv(0x04, user.encode()) + tlv(0x80, pw.encode()))
msg = tlv(0x30, tlv(0x02, b'\x01') + bind)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try:
    s = ctx.wrap_socket(socket.create_connection((host, 636), timeout=3))
except OSError:
    sys.exit(1)                                   # not listening (yet)
with s:
    # is it *our* server? (another DC on the same address/realm would otherwise pass the probe)
    if s.getpeercert(True) != ssl.PEM_cert_to_DER_cert(open(certfile).read()):
        sys.exit(3)
    s.sendall(msg); r = s.recv(4096)
i = r.index(b'\x61'); j = r.index(b'\x0a\x01', i)   # BindResponse ... resultCode
sys.exit(0 if r[j + 2] == 0 else 2)
PY
        if [ $rc -eq 0 ]; then
            is_running || { log "samba exited during start-up; see $DIR/log/samba.log"; exit 1; }
            log "ready in $((SECONDS - t0)) s: ldaps://$HOST:636 ldap://$HOST:389 (pid $(cat "$DIR/run/samba.pid"))"
            return
        fi
        if [ $rc -eq 3 ]; then
            log "another server (not ours: different TLS certificate) answers on $HOST:636 - use SAMBA_IFACE=127.0.0.2"
            do_stop; exit 1
        fi
        if [ -f "$DIR/run/samba.pid" ] && ! is_running; then
            log "samba died during start-up:"; tail -8 "$DIR/log/samba.log" >&2; exit 1
        fi
        sleep 0.2
    done
    log "NOT ready after ${WAIT}s; last log lines:"; tail -30 "$DIR/log/samba.log" >&2 || true
    exit 1
}

alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

do_stop() {
    local f p pids=()
    for f in samba smbd winbindd; do
        [ -f "$DIR/run/$f.pid" ] || continue
        p=$(cat "$DIR/run/$f.pid")
        if ours "$p"; then kill -TERM "$p" 2>/dev/null && pids+=("$p"); fi
        rm -f "$DIR/run/$f.pid"
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
        if alive "$p"; then log "pid $p ignored TERM for 10 s, sending KILL"; kill -KILL "$p" 2>/dev/null || true; fi
    done
    # remove only an address this script added (never 127.0.0.1)
    if [ -f "$DIR/run/added-ip" ] && [ "$(cat "$DIR/run/added-ip")" = "$IFACE" ] && [ "$IFACE" != 127.0.0.1 ] && has_ip; then
        "${NS[@]}" ip addr del "$IFACE/8" dev lo || true
    fi
    rm -f "$DIR/run/added-ip"
    log "stopped"
}

case "${1:-up}" in
    install) do_install ;;
    up)      do_install; do_provision; do_start ;;
    down)    do_stop ;;
    reset)   do_stop; rm -rf "$DIR"; do_provision; do_start ;;   # do_provision restores the template
    purge)   do_stop; rm -rf "$DIR" "$TEMPLATE" ;;
    status)  if is_running; then echo "running pid $(cat "$DIR/run/samba.pid")"; else echo "not running"; exit 3; fi ;;
    *) echo "usage: $0 install|up|down|reset|purge|status" >&2; exit 2 ;;
esac
