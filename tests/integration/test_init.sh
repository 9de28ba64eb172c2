#!/usr/bin/env bash
# msspd init (docs/internals/datadir.md), checked from the outside with
# openssl, sqlite3 and the file system: layout and modes, the generated
# configuration, the TLS PKI, the user certificates in the store, the demo
# users' fates, refusal of a non-empty directory, clean-up after a failure,
# usage errors and --bench-users.  TAP on stdout (lib.sh).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh

D=$WORK/d
PORT=19443
USERS="01 02 03 04 05 06 07 08"

mode_of() { stat -c %a "$1" 2>/dev/null; }
# conf_get FILE SECTION KEY: the value of KEY in [SECTION] (or [SECTION "x"])
conf_get() {
  awk -v sec="$2" -v key="$3" '
    /^\[/ { s = $0; sub(/^\[/, "", s); sub(/[ \]].*$/, "", s); in_sec = (s == sec); next }
    /^#/ { next }
    in_sec { k = $0; sub(/[ \t]*=.*$/, "", k);
             if (k == key) { v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v); print v; exit } }
  ' "$1"
}
# tree_sum DIR: names, modes and contents of everything under DIR
tree_sum() {
  (cd "$1" && find . -printf '%p %m %s\n' | sort && find . -type f -print0 | sort -z |
     xargs -0 sha256sum) | sha256sum
}

# ---- init --demo ----------------------------------------------------------
"$BIN/msspd" init --data-dir "$D" --demo --base-port $PORT >"$WORK/init.log" 2>&1
rc=$?
check "init --demo exits 0" [ $rc -eq 0 ]
if [ $rc -ne 0 ]; then sed 's/^/# /' "$WORK/init.log"; finish; exit 1; fi
check "summary names the ports" grep -q "AE $PORT" "$WORK/init.log"

missing=""
for f in msspd.conf mssp.db tls/ca.crt tls/ca.key tls/server.crt tls/server.key \
         ca/ca.crt ca/ca.key ca/ca.conf ca/ca.db ca/passphrase ca/crl.pem \
         demo/ap.crt demo/ap.key demo/tls-ca.crt demo/user-ca.crt demo/mss-ap.conf \
         phones/phone.conf; do
  [ -f "$D/$f" ] || missing="$missing $f"
done
for n in $USERS; do
  for f in keystore device.key device.conf; do
    [ -f "$D/phones/+358470000$n/$f" ] || missing="$missing phones/+358470000$n/$f"
  done
done
check "every file of the layout exists${missing:+ (missing:$missing)}" [ -z "$missing" ]

bad=""
for d in . tls ca demo phones; do [ "$(mode_of "$D/$d")" = 700 ] || bad="$bad $d"; done
for n in $USERS; do [ "$(mode_of "$D/phones/+358470000$n")" = 700 ] || bad="$bad +358470000$n"; done
check "directories are 0700${bad:+ (not:$bad)}" [ -z "$bad" ]
bad=""
for f in tls/ca.key tls/server.key demo/ap.key ca/ca.key ca/passphrase msspd.conf \
         demo/mss-ap.conf mssp.db; do
  [ "$(mode_of "$D/$f")" = 600 ] || bad="$bad $f"
done
for n in $USERS; do
  for f in keystore device.key device.conf; do
    [ "$(mode_of "$D/phones/+358470000$n/$f")" = 600 ] || bad="$bad +358470000$n/$f"
  done
done
check "secret files are 0600${bad:+ (not:$bad)}" [ -z "$bad" ]

# ---- msspd.conf and the other configuration files ---------------------------
C=$D/msspd.conf
check "msspd.conf: comments only at the start of a line" \
  bash -c "! grep -Eq '^[^#].*[[:space:]]#' '$C'"
check "msspd.conf: [ae] port = $PORT" [ "$(conf_get "$C" ae port)" = $PORT ]
check "msspd.conf: [afe] port = $((PORT + 2)), push_port = $((PORT + 4))" \
  [ "$(conf_get "$C" afe port)/$(conf_get "$C" afe push_port)" = "$((PORT + 2))/$((PORT + 4))" ]
check "msspd.conf: [admin] port = $((PORT + 3))" [ "$(conf_get "$C" admin port)" = $((PORT + 3)) ]
missing=""
for sk in node:id node:workers node:pool_threads store:uri ae:listen ae:cert ae:key \
          ae:client_ca ae:mssp_id ae:instant_skew_s ae:default_timeout_s ae:max_timeout_s \
          afe:listen afe:cert afe:key afe:push afe:push_addr admin:listen home:user_ca \
          notify:cert notify:key notify:ca notify:retries notify:retry_ms me:listen me:port \
          me:cert me:key me:client_ca me:pki_listen me:pki_port node:roles; do
  [ -n "$(conf_get "$C" "${sk%%:*}" "${sk#*:}")" ] || missing="$missing $sk"
done
check "msspd.conf: every key of datadir.md is set${missing:+ (missing:$missing)}" [ -z "$missing" ]
check "msspd.conf: store uri = sqlite:mssp.db" [ "$(conf_get "$C" store uri)" = sqlite:mssp.db ]
check "msspd.conf: [me] port = $((PORT + 1))" [ "$(conf_get "$C" me port)" = $((PORT + 1)) ]
check "msspd.conf: [me] pki_port = $((PORT + 5)), pki_listen on the loopback" \
  [ "$(conf_get "$C" me pki_port)/$(conf_get "$C" me pki_listen)" = "$((PORT + 5))/127.0.0.1" ]
check "summary names the pki port" grep -q "pki $((PORT + 5))" "$WORK/init.log"
check "msspd.conf: no [ap] section (APs live in the store)" bash -c "! grep -q '^\[ap ' '$C'"
fp=$(openssl x509 -in "$D/demo/ap.crt" -outform DER | sha256sum | cut -d' ' -f1)
apbody=$(sqlite3 "$D/mssp.db" "SELECT body FROM records WHERE kind='ap' AND name='http://demo.ap/'" 2>&1)
check "store: the demo AP record binds the SHA-256 of demo/ap.crt" grep -q "$fp" <<<"$apbody"
for a in admin admin2 ra auditor; do
  check "admin/$a.crt is a client certificate from the TLS CA" \
    quiet openssl verify -purpose sslclient -CAfile "$D/tls/ca.crt" "$D/admin/$a.crt"
  check "admin/$a.key and admin/$a.conf are 0600" \
    [ "$(mode_of "$D/admin/$a.key")/$(mode_of "$D/admin/$a.conf")" = 600/600 ]
done
check "audit/audit.key is 0600, audit/audit.pub exists" \
  [ "$(mode_of "$D/audit/audit.key")" = 600 -a -f "$D/audit/audit.pub" ]
check "the audit log verifies after init" quiet "$BIN/msspctl" audit verify --data-dir "$D"
A=$D/demo/mss-ap.conf
check "mss-ap.conf: url and AP_ID" \
  [ "$(conf_get "$A" ap url) $(conf_get "$A" ap ap_id)" = "https://127.0.0.1:$PORT http://demo.ap/" ]
P=$D/phones/phone.conf
check "phone.conf: afe_port and push_port" \
  [ "$(conf_get "$P" phone afe_port)/$(conf_get "$P" phone push_port)" = "$((PORT + 2))/$((PORT + 4))" ]
check "phone.conf: ca resolves to tls/ca.crt" cmp -s "$D/phones/$(conf_get "$P" phone ca)" "$D/tls/ca.crt"

# ---- TLS PKI ------------------------------------------------------------------
check "openssl verify: tls/server.crt (sslserver)" \
  quiet openssl verify -purpose sslserver -CAfile "$D/tls/ca.crt" "$D/tls/server.crt"
check "openssl verify: tls/server.crt (sslclient, notifications)" \
  quiet openssl verify -purpose sslclient -CAfile "$D/tls/ca.crt" "$D/tls/server.crt"
check "openssl verify: demo/ap.crt (sslclient)" \
  quiet openssl verify -purpose sslclient -CAfile "$D/tls/ca.crt" "$D/demo/ap.crt"
txt=$(openssl x509 -in "$D/tls/server.crt" -noout -text -ext subjectAltName 2>&1)
check "server certificate: SAN DNS:localhost, 127.0.0.1, ::1" \
  grep -q "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" <<<"$txt"
check "server certificate: P-256" grep -q "prime256v1\|P-256" <<<"$txt"
ser=$(openssl x509 -in "$D/tls/server.crt" -noout -serial | cut -d= -f2)
check "server certificate: 16-byte serial" [ ${#ser} -eq 32 ]
txt=$(openssl x509 -in "$D/tls/ca.crt" -noout -text)
check "TLS CA: CA:TRUE, keyCertSign" bash -c 'grep -q "CA:TRUE" <<<"$1" && grep -q "Certificate Sign" <<<"$1"' _ "$txt"
txt=$(openssl x509 -in "$D/demo/ap.crt" -noout -subject -ext subjectAltName,extendedKeyUsage)
check "demo AP: CN=demo.ap, SAN, EKU clientAuth+serverAuth" bash -c \
  'grep -q "CN *= *demo.ap" <<<"$1" && grep -q "DNS:localhost, IP Address:127.0.0.1" <<<"$1" &&
   grep -q "Client Authentication" <<<"$1" && grep -q "Server Authentication" <<<"$1"' _ "$txt"
check "keys are unencrypted PKCS#8 PEM and match their certificates" bash -c '
  for p in tls/ca tls/server demo/ap; do
    head -1 "$1/$p.key" | grep -q "BEGIN PRIVATE KEY" || exit 1
    [ "$(openssl pkey -in "$1/$p.key" -pubout)" = "$(openssl x509 -in "$1/$p.crt" -noout -pubkey)" ] || exit 1
  done' _ "$D"
check "demo/tls-ca.crt and user-ca.crt are the CAs" \
  bash -c 'cmp -s "$1/demo/tls-ca.crt" "$1/tls/ca.crt" && cmp -s "$1/demo/user-ca.crt" "$1/ca/ca.crt"' _ "$D"

# ---- Phones ------------------------------------------------------------------------
bad=""
for n in $USERS; do
  dc=$D/phones/+358470000$n/device.conf
  k=$(conf_get "$dc" device channel_key)
  [ "$(conf_get "$dc" device id)" = "dev-358470000$n" ] || bad="$bad $n:id"
  [ "$(conf_get "$dc" device msisdn)" = "+358470000$n" ] || bad="$bad $n:msisdn"
  [ "$(conf_get "$dc" device pin)" = 123456 ] || bad="$bad $n:pin"
  [ "$(printf '%s' "$k" | base64 -d 2>/dev/null | wc -c)" = 32 ] || bad="$bad $n:key"
  openssl pkey -in "$D/phones/+358470000$n/device.key" -noout 2>/dev/null || bad="$bad $n:devkey"
done
check "device.conf and device.key of every demo phone${bad:+ (bad:$bad)}" [ -z "$bad" ]

# ---- Store and user certificates (sqlite3 CLI) --------------------------------------
if command -v sqlite3 >/dev/null; then
  q() { sqlite3 "$D/mssp.db" "$@"; }
  check "store: 8 users, 8 devices, 16 keys" \
    [ "$(q 'select count(*) from users'),$(q 'select count(*) from devices'),$(q 'select count(*) from keys')" = 8,8,16 ]
  want="35847000001-authn 35847000001-click 35847000001-sign 35847000002-authn 35847000002-sign
35847000003-authn 35847000003-sign 35847000004-authn 35847000004-sign 35847000005-authn
35847000005-sign 35847000006-authn 35847000007-authn 35847000007-sign 35847000008-authn
35847000008-sign"
  check "store: the key ids of the demo table" \
    [ "$(q 'select key_id from keys order by key_id' | tr '\n' ' ')" = "$(tr '\n' ' ' <<<"$want")" ]
  check "store: click key is PIN-less, mss:demo:authn:loa2:app" \
    [ "$(q "select has_pin, profiles, purpose from keys where key_id='35847000001-click'")" = "0|mss:demo:authn:loa2:app|1" ]
  check "store: sign keys have purpose 2 and the sign profile" \
    [ "$(q "select count(*) from keys where key_group='sign' and purpose=2 and profiles='mss:demo:sign:loa3:app' and has_pin=1")" = 7 ]
  check "store: user 007's keys REVOKED, all others ACTIVE" \
    [ "$(q "select group_concat(key_id) from keys where state<>1")" = "35847000007-authn,35847000007-sign" ]
  bad=""
  for n in $USERS; do
    k=$(conf_get "$D/phones/+358470000$n/device.conf" device channel_key | base64 -d | od -An -tx1 | tr -d ' \n')
    [ "$(q "select lower(hex(e2e_key)) from devices where device_id='dev-358470000$n' and msisdn='+358470000$n'")" = "$k" ] || bad="$bad $n:K"
    spki=$(openssl pkey -in "$D/phones/+358470000$n/device.key" -pubout -outform DER | od -An -tx1 | tr -d ' \n')
    [ "$(q "select lower(hex(auth_spki)) from devices where device_id='dev-358470000$n'")" = "$spki" ] || bad="$bad $n:spki"
  done
  check "store: device records hold device.key's SPKI and device.conf's channel key${bad:+ (bad:$bad)}" [ -z "$bad" ]

  mkdir -p "$WORK/certs"
  bad=""
  for id in $want; do
    der=$WORK/certs/$id.der
    q "select writefile('$der', cert) from keys where key_id='$id'" >/dev/null
    pem=$WORK/certs/$id.pem
    openssl x509 -inform DER -in "$der" -out "$pem" 2>/dev/null || { bad="$bad $id:parse"; continue; }
    openssl verify -CAfile "$D/ca/ca.crt" "$pem" >/dev/null 2>&1 || bad="$bad $id:verify"
    m=${id%%-*}
    subj=$(openssl x509 -in "$pem" -noout -subject -nameopt RFC2253)
    [ "$subj" = "subject=serialNumber=MSISDN:\\+$m,CN=Demo User ${m: -1}" ] || bad="$bad $id:subject($subj)"
    ser=$(openssl x509 -in "$pem" -noout -serial | cut -d= -f2)
    [ "$ser" = "$(q "select cert_serial from keys where key_id='$id'")" ] || bad="$bad $id:serial"
    ku=$(openssl x509 -in "$pem" -noout -ext keyUsage)
    case $id in
      *-sign) grep -q "Non Repudiation" <<<"$ku" || bad="$bad $id:ku";;
      *) grep -q "Non Repudiation" <<<"$ku" && bad="$bad $id:ku";;
    esac
  done
  check "store: every certificate verifies against ca/ca.crt, subject CN + serialNumber, serial and profile${bad:+ (bad:$bad)}" [ -z "$bad" ]
  check "openssl x509 shows serialNumber=MSISDN:+35847000001" \
    grep -q "serialNumber *= *\"\?MSISDN:+35847000001" <(openssl x509 -in "$WORK/certs/35847000001-sign.pem" -noout -subject)
  out=$(openssl verify -crl_check -CAfile "$D/ca/ca.crt" -CRLfile "$D/ca/crl.pem" "$WORK/certs/35847000007-sign.pem" 2>&1)
  check "user 007's certificate is revoked in ca/crl.pem" grep -q "certificate revoked" <<<"$out"
  check "user 008's certificate passes the CRL check" \
    quiet openssl verify -crl_check -CAfile "$D/ca/ca.crt" -CRLfile "$D/ca/crl.pem" "$WORK/certs/35847000008-sign.pem"
else
  echo "# sqlite3 not installed: store checks skipped"
fi

# ---- The CA database knows the fates ----------------------------------------------
check "ca.db: 16 certificates, 2 revoked (keyCompromise)" \
  [ "$(grep -c ' V - - ' "$D/ca/ca.db")/$(grep -c ' R .* keyCompromise ' "$D/ca/ca.db")" = 14/2 ]

# ---- Refusals ---------------------------------------------------------------------
before=$(tree_sum "$D")
"$BIN/msspd" init --data-dir "$D" --demo --base-port $PORT >"$WORK/again.log" 2>&1
rc=$?
check "init on the same directory exits 1" [ $rc -eq 1 ]
check "... with a clear message" grep -q "not empty" "$WORK/again.log"
check "... and leaves it intact" [ "$(tree_sum "$D")" = "$before" ]

mkdir "$WORK/empty"
chmod 755 "$WORK/empty"
"$BIN/msspd" init --data-dir "$WORK/empty" >"$WORK/empty.log" 2>&1
rc=$?
check "an existing empty directory is accepted (no --demo)" [ $rc -eq 0 ]
check "... and made 0700" [ "$(mode_of "$WORK/empty")" = 700 ]
check "... msspd.conf written" [ -f "$WORK/empty/msspd.conf" ]
check "without --demo: no demo AP, no phones, but phone.conf and the accounts" bash -c \
  '[ ! -e "$1/demo" ] && [ "$(ls "$1/phones")" = phone.conf ] && [ -f "$1/admin/admin.conf" ] &&
   ! grep -q "^\[ap " "$1/msspd.conf"' _ "$WORK/empty"
check "default base port 9443" [ "$(conf_get "$WORK/empty/msspd.conf" ae port)" = 9443 ]

touch "$WORK/afile"
"$BIN/msspd" init --data-dir "$WORK/afile" >/dev/null 2>&1
check "a file as DIR: exit 1" [ $? -eq 1 ]

# A failure half-way: DIR so long (4071 bytes) that the TLS files still fit
# but the user CA's directory no longer does.  Everything made must be gone.
long=$WORK/l
comp=$(printf 'x%.0s' $(seq 1 200))
while [ $((${#long} + 201)) -le 4069 ]; do long=$long/$comp; done
long=$long/$(printf 'y%.0s' $(seq 1 $((4069 - ${#long} - 1))))
mkdir -p "$long"
"$BIN/msspd" init --data-dir "$long/d" --demo >"$WORK/long.log" 2>&1
rc=$?
check "a failure half-way exits 1 (DIR of ${#long}+2 bytes)" [ $rc -eq 1 ]
check "... after init had started creating files" grep -q "removed" "$WORK/long.log"
check "... and removes the directory it created" [ ! -e "$long/d" ]
mkdir "$long/e"
"$BIN/msspd" init --data-dir "$long/e" --demo >/dev/null 2>&1
rc=$?
check "... or empties the existing one it was given" [ $rc -eq 1 ]
check "... which is still there, empty" bash -c '[ -d "$1" ] && [ -z "$(ls -A "$1")" ]' _ "$long/e"

for args in "--demo" "--data-dir $WORK/u1 --bench-users 5" "--data-dir $WORK/u2 --base-port 0" \
            "--data-dir $WORK/u3 --base-port 70000" "--data-dir $WORK/u4 --demo --bench-users 10001" \
            "--data-dir $WORK/u5 --bogus" "--data-dir $WORK/u6 extra"; do
  # shellcheck disable=SC2086
  "$BIN/msspd" init $args >/dev/null 2>&1
  rc=$?
  check "usage error exits 2 and creates nothing: $args" \
    bash -c '[ "$1" -eq 2 ] && [ -z "$(ls -d "$2"/u? 2>/dev/null)" ]' _ $rc "$WORK"
done

# ---- --bench-users ------------------------------------------------------------------
B=$WORK/b
"$BIN/msspd" init --data-dir "$B" --demo --base-port $PORT --bench-users 20 >"$WORK/bench.log" 2>&1
rc=$?
check "init --demo --bench-users 20 exits 0" [ $rc -eq 0 ]
check "... reports progress" grep -q "bench users: 20/20" "$WORK/bench.log"
check "... 28 phones" [ "$(find "$B/phones" -mindepth 1 -maxdepth 1 -type d | wc -l)" = 28 ]
dc=$B/phones/+35849000019/device.conf
check "... bench device.conf: id, no PIN" \
  [ "$(conf_get "$dc" device id)/$(conf_get "$dc" device pin)" = "dev-35849000019/" ]
if command -v sqlite3 >/dev/null; then
  q() { sqlite3 "$B/mssp.db" "$@"; }
  check "... store: 28 users, 36 keys, 20 click keys without PIN" \
    [ "$(q 'select count(*) from users')/$(q 'select count(*) from keys')/$(q "select count(*) from keys where key_id glob '3584900*-click' and has_pin=0 and profiles='mss:demo:authn:loa2:app'")" = 28/36/20 ]
  q "select writefile('$WORK/bench.der', cert) from keys where key_id='35849000000-click'" >/dev/null
  check "... bench certificate verifies, serialNumber=MSISDN:+35849000000" bash -c '
    openssl x509 -inform DER -in "$1" -out "$1.pem" &&
    openssl verify -CAfile "$2/ca/ca.crt" "$1.pem" >/dev/null &&
    openssl x509 -in "$1.pem" -noout -subject | grep -q "MSISDN:+35849000000"' _ "$WORK/bench.der" "$B"
fi

finish
