#!/usr/bin/env bash
# The ME (issue 5) end to end with real processes: a new user registered
# through msspctl and another through the JSON API with curl — create,
# activation code, a fresh mss-phone bound with it, key generation on the
# phone, certificate from the CA — then signatures by the demo AP through
# the AE; MReg SOAP; role and separation-of-duties refusals (M-02, M-06);
# dual control (M-01); activation-code abuse (K-13); revocation (K-15);
# the key-material scan (K-02..K-05); the audit log and its tamper
# detection (P-05, M-03); and signing going on while the ME process is
# stopped and started (maintenance without interruption).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
setup_platform

ctl() { "$BIN/msspctl" --data-dir "$DIR" --account "$1" "${@:2}"; }
PHONES=$DIR/phones

# ---- accounts ---------------------------------------------------------------
for a in admin ra auditor; do
  out=$(ctl "$a" session 2>&1)
  check "msspctl session as $a: role $a" grep -q "role: $a" <<<"$out"
done

# ---- a new user through msspctl -----------------------------------------------
U1=+35847001001
out=$(ctl ra user create $U1 --given-name Anna --surname Virtanen --id-number PNOFI-010190-123A \
  --country FI --lang fi 2>&1)
check "msspctl user create $U1" grep -q "msisdn: $U1" <<<"$out"
out=$(ctl ra user create $U1 --given-name Anna 2>&1)
check "creating it again: refused (409)" grep -q "HTTP 409" <<<"$out"
out=$(ctl ra user activate $U1 2>&1)
code=$(sed -n 's/^code: \([0-9-]*\)$/\1/p' <<<"$out")
check "activation code issued (NNNN-NNNN-NNNN)" grep -Eq '^[0-9]{4}-[0-9]{4}-[0-9]{4}$' <<<"$code"
wrong=$(printf '%012d' $(( (10#${code//-/} + 1) % 1000000000000 )))
out=$("$BIN/mss-phone" activate --dir "$PHONES" --msisdn $U1 --code "$wrong" 2>&1)
check "mss-phone activate with a wrong code: refused" test $? -ne 0
check "... and no phone directory left behind" test ! -e "$PHONES/$U1"
out=$("$BIN/mss-phone" activate --dir "$PHONES" --msisdn $U1 --code "$code" --pin 246810 2>&1)
check "mss-phone activate with the code: bound" grep -q "activated $U1" <<<"$out"
rm -rf "$WORK/again" && mkdir -p "$WORK/again" && cp "$PHONES/phone.conf" "$WORK/again/"
out=$("$BIN/mss-phone" activate --dir "$WORK/again" --msisdn $U1 --code "$code" 2>&1)
check "the same code again: refused (K-13, single use)" test $? -ne 0
check "the running mss-phone picks up the new phone" wait_for "$WORK/phone.log" "^READY $U1 " 15
out=$(ctl ra user keys $U1 --profile default-app --wait 60 2>&1)
check "msspctl user keys: generated on the phone, certificates issued" \
  bash -c '[ "$(grep -c ": done" <<<"$1")" = 2 ]' _ "$out"
out=$(ctl auditor --json user show $U1 2>&1)
check "user detail: two ACTIVE keys with certificates" \
  bash -c '[ "$(grep -c "\"state\": \"active\"" <<<"$1")" -ge 2 ]' _ "$out"
out=$(ap sign --msisdn $U1 --profile mss::sign:loa3 --dtbd "Registered by msspctl" 2>&1)
check "the AP gets $U1's verified signature" grep -q "signature verified" <<<"$out"
out=$(ctl auditor --json cert list $U1 2>&1)
check "the certificate's subject comes from the RA record (K-10)" grep -q "Virtanen" <<<"$out"
ser=$(grep -A6 '"key_id": "35847001001-sign"' <<<"$out" | sed -n 's/.*"serial": "\([0-9A-Fa-f]*\)".*/\1/p')

# ---- another through the JSON API (curl) ---------------------------------------
U2=+35847001002
out=$(me_api ra POST /users "{\"msisdn\":\"$U2\",\"given_name\":\"Bo\",\"surname\":\"Berg\",\"country\":\"SE\"}")
check "API: POST /users: 201" grep -q "^HTTP 201" <<<"$out"
out=$(me_api ra POST "/users/%2B35847001002/activation")
code=$(sed -n 's/.*"code": *"\([0-9-]*\)".*/\1/p' <<<"$out")
check "API: activation code: 201" grep -q "^HTTP 201" <<<"$out"
"$BIN/mss-phone" activate --dir "$PHONES" --msisdn $U2 --code "$code" >/dev/null 2>&1
check "phone of $U2 bound and online" wait_for "$WORK/phone.log" "^READY $U2 " 15
out=$(me_api ra POST "/users/%2B35847001002/keys" '{"registration_profile":"click-app"}')
check "API: key request: 202 with a job" grep -q "^HTTP 202" <<<"$out"
job=$(sed -n 's/.*"job": *"\(J[0-9a-f]*\)".*/\1/p' <<<"$out" | head -1)
for _ in $(seq 1 100); do
  st=$(me_api auditor GET "/jobs/$job" | sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p')
  [ "$st" = done ] || [ "$st" = failed ] && break
  sleep 0.3
done
check "API: the key job is done" test "$st" = done
out=$(ap sign --msisdn $U2 --profile mss::authn:loa2 --dtbd "Click to log in" 2>&1)
check "the AP gets $U2's click-OK authentication" grep -q "signature verified" <<<"$out"

# ---- PIN unblock with the PUK flow on the phone ----------------------------------
out=$(ap sign --msisdn +35847000003 --profile mss::sign:loa3 2>&1)
check "+35847000003's PIN is blocked (402)" grep -q "fault 402" <<<"$out"
out=$(ctl ra user unblock +35847000003 35847000003-sign --wait 30 2>&1)
check "msspctl user unblock: the phone took the PUK and a new PIN" grep -q ": done" <<<"$out"
out=$(ap sign --msisdn +35847000003 --profile mss::sign:loa3 2>&1)
check "after the unblock the user signs again" grep -q "signature verified" <<<"$out"

# ---- MReg (SOAP MSS_Registration, Laverca's shape) -------------------------------
mreg() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><MSS_Registration><mss:MSS_RegistrationReq xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#" xmlns:mreg="http://www.methics.fi/MSSPRegistration/v1.0.0#" MajorVersion="1" MinorVersion="1"><mss:AP_Info AP_ID="http://demo.ap/" AP_PWD="" AP_TransID="r$RANDOM" Instant="$(now_instant)"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser/><mreg:RegistrationInput InputId="_1"><mreg:Target><mreg:MobileUser><mss:MSISDN>$1</mss:MSISDN></mreg:MobileUser></mreg:Target><mreg:MregRequest><mreg:ProvisioningOperation Name="$2">$3</mreg:ProvisioningOperation></mreg:MregRequest></mreg:RegistrationInput></mss:MSS_RegistrationReq></MSS_Registration></soapenv:Body></soapenv:Envelope>
EOF
}
U3=+35847001003
out=$(me_curl ra -H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: ""' \
  --data-binary "$(mreg $U3 CreateMobileUser '<mreg:Parameter Name="givenName" Value="Cai"/><mreg:Parameter Name="surName" Value="Lind"/>')" \
  "https://127.0.0.1:$ME_PORT/soap/services/MSS_RegistrationPort")
check "MReg CreateMobileUser: status 100" grep -q 'Value="100"\|<[a-z:]*StatusCode[^>]*Value="100"' <<<"$out"
out=$(me_curl ra -H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: ""' \
  --data-binary "$(mreg $U3 GetMobileUser '')" \
  "https://127.0.0.1:$ME_PORT/soap/services/MSS_RegistrationPort")
check "MReg GetMobileUser: the user's given name" grep -q "Cai" <<<"$out"

# ---- roles and separation of duties -------------------------------------------------
out=$(me_api auditor POST /users '{"msisdn":"+35847001099"}')
check "auditor creating a user: 403 (read-only, M-02)" grep -q "^HTTP 403" <<<"$out"
out=$(me_api ra GET "/audit?limit=5")
check "RA operator reading the audit log: 403 (M-02)" grep -q "^HTTP 403" <<<"$out"
out=$(me_api ra POST /aps '{"id":"http://x.ap/"}')
check "RA operator creating an AP: 403" grep -q "^HTTP 403" <<<"$out"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$DIR/tls/ca.crt" --cert "$DIR/demo/ap.crt" \
  --key "$DIR/demo/ap.key" "https://127.0.0.1:$ME_PORT/api/v1/session")
check "an AP certificate on the ME: 403 (separation of duties)" test "$code" = 403
out=$(curl -sS --max-time 10 --cacert "$DIR/tls/ca.crt" --cert "$DIR/admin/admin.crt" \
  --key "$DIR/admin/admin.key" -H 'Content-Type: text/xml' --data-binary "<x/>" \
  "https://127.0.0.1:$AE_PORT/soap/services/MSS_SignaturePort" 2>&1)
check "an administrator certificate on the AE: refused" grep -q "_104\|403" <<<"$out"
code=$(ae_curl -o /dev/null -w '%{http_code}' "https://localhost:$AE_PORT/api/v1/session")
check "the admin API is not on the AP listener (M-06): 404" test "$code" = 404
code=$(ae_curl -o /dev/null -w '%{http_code}' "https://localhost:$AE_PORT/")
check "nor the console: 404" test "$code" = 404
code=$(me_curl admin -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary "{\"msisdn\":\"+35847001098\"}" "https://127.0.0.1:$ME_PORT/api/v1/users")
check "a change without the CSRF token: 403" test "$code" = 403
code=$(me_curl admin -o /dev/null -w '%{http_code}' "https://127.0.0.1:$ME_PORT/../../etc/passwd")
check "path traversal on the console: 404 or 400" bash -c '[ "$1" = 404 ] || [ "$1" = 400 ]' _ "$code"
hdr=$(me_curl admin -D - -o /dev/null "https://127.0.0.1:$ME_PORT/")
check "the console page has a strict Content-Security-Policy" \
  grep -qi "content-security-policy: default-src 'none'" <<<"$hdr"

# ---- dual control (P-09, M-01) ---------------------------------------------------------
fp=$(openssl x509 -in "$DIR/admin/ra.crt" -outform DER | sha256sum | cut -d' ' -f1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj /CN=ap2 -days 2 -keyout "$WORK/ap2.key" -out "$WORK/ap2.crt" >/dev/null 2>&1
fp2=$(openssl x509 -in "$WORK/ap2.crt" -outform DER | sha256sum | cut -d' ' -f1)
out=$(me_api admin POST /aps "{\"id\":\"http://second.ap/\",\"name\":\"Second\",\"cert_sha256\":[\"$fp\"]}")
check "an AP bound to an account's certificate: refused" grep -q "^HTTP 409\|^HTTP 400" <<<"$out"
out=$(me_api admin POST /aps "{\"id\":\"http://second.ap/\",\"name\":\"Second\",\"cert_sha256\":[\"$fp2\"],\"profiles\":[\"*\"],\"modes\":[\"synch\"],\"notify_urls\":[],\"rate\":10}")
check "admin creates an AP: 202, pending a second administrator" grep -q "^HTTP 202" <<<"$out"
appr=$(sed -n 's/.*"approval": *"\(A[0-9a-f]*\)".*/\1/p' <<<"$out")
out=$(me_api admin POST "/approvals/$appr/approve")
check "the requester approving it: 403" grep -q "^HTTP 403" <<<"$out"
out=$(me_api admin2 POST "/approvals/$appr/approve")
check "a second administrator approves: done" grep -q "^HTTP 20[01]" <<<"$out"
out=$(me_api auditor GET "/aps/http%3A%2F%2Fsecond.ap%2F")
check "the AP exists after the approval" grep -q '"Second"' <<<"$out"

# ---- the mesh: peers and routes (issue 6, mesh.md) ----------------------------------------
PEER=http://mssp-b.test/
PEER_E=http%3A%2F%2Fmssp-b.test%2F
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj /CN=mssp-b -days 2 -keyout "$WORK/peer.key" -out "$WORK/peer.crt" >/dev/null 2>&1
pfp=$(openssl x509 -in "$WORK/peer.crt" -outform DER | sha256sum | cut -d' ' -f1)
out=$(ctl admin peer put $PEER --url https://127.0.0.1:$((MESH_PORT + 100)) --cert "$WORK/peer.crt" \
  --ca-file "$WORK/peer.crt" --name "Operator B" --profiles '*' 2>&1)
check "msspctl peer put (create): pending a second administrator" grep -q "^pending: " <<<"$out"
appr=$(sed -n 's/.*approval approve \(A[0-9a-f]*\).*/\1/p' <<<"$out")
out=$(ctl auditor peer get $PEER 2>&1)
check "... the peer does not exist before the approval (404)" grep -q "HTTP 404" <<<"$out"
out=$(ctl admin approval approve "$appr" 2>&1)
check "... the requester cannot approve it (403)" grep -q "HTTP 403" <<<"$out"
check "... a second administrator approves" quiet ctl admin2 approval approve "$appr"
out=$(ctl auditor peer get $PEER 2>&1)
check "msspctl peer get: the certificate's SHA-256 pinned" grep -q "$pfp" <<<"$out"
out=$(ctl auditor peer list 2>&1)
check "msspctl peer list: a table with the peer" \
  bash -c 'grep -q "^id " <<<"$1" && grep -q "Operator B" <<<"$1"' _ "$out"
out=$(ctl ra peer list 2>&1)
check "an RA operator listing peers: 403" grep -q "HTTP 403" <<<"$out"
out=$(ctl admin peer put $PEER --rate 20 --name "Operator B2" 2>&1)
check "peer name and rate: one administrator" grep -q "name: Operator B2" <<<"$out"
out=$(ctl admin peer put $PEER --url https://127.0.0.1:1 2>&1)
check "peer url change: dual control" grep -q "^pending: " <<<"$out"
out=$(ctl admin route put +35848 --peer http://nobody.test/ 2>&1)
check "a route to an unknown peer: refused (409)" grep -q "HTTP 409" <<<"$out"
out=$(ctl admin route put 35848 --peer $PEER 2>&1)
check "a malformed prefix: refused (400)" grep -q "HTTP 400" <<<"$out"
# routes are under dual control (a route decides who prompts our users)
route2() { local out appr
  out=$(ctl admin route "$@" 2>&1) || return 1
  appr=$(sed -n 's/.*approval approve \(A[0-9a-f]*\).*/\1/p' <<<"$out")
  [ -n "$appr" ] && quiet ctl admin2 approval approve "$appr"; }
out=$(ctl admin route put +35848 --peer $PEER 2>&1)
check "msspctl route put: pending a second administrator" grep -q "^pending: " <<<"$out"
appr=$(sed -n 's/.*approval approve \(A[0-9a-f]*\).*/\1/p' <<<"$out")
check "msspctl route put +35848 --peer B (approved by admin2)" quiet ctl admin2 approval approve "$appr"
check "msspctl route put +358481234567 --exact" route2 put +358481234567 --peer $PEER --exact
check "a route to ourselves (local inside B's prefix)" \
  route2 put +3584812 --peer http://openmssp.local/
out=$(ctl auditor route list 2>&1)
check "msspctl route list: the three routes" \
  bash -c 'grep -q "^prefix \|  prefix\|prefix" <<<"$1" && [ "$(grep -c "+3584" <<<"$1")" -ge 3 ]' _ "$out"
out=$(ctl admin peer delete $PEER 2>&1)
check "deleting a peer that routes name: refused (409)" grep -q "HTTP 409" <<<"$out"
for r in +35848 +358481234567 +3584812; do route2 delete $r; done
out=$(ctl auditor --json route list 2>&1)
check "the routes deleted" grep -q '"routes": \[\]' <<<"$out"
out=$(ctl admin peer delete $PEER 2>&1)
appr=$(sed -n 's/.*approval approve \(A[0-9a-f]*\).*/\1/p' <<<"$out")
check "peer delete: pending, then approved by another administrator" \
  quiet ctl admin2 approval approve "$appr"
out=$(me_api auditor GET "/peers/$PEER_E")
check "the peer is gone (API: 404)" grep -q "^HTTP 404" <<<"$out"
out=$(ctl auditor audit list --limit 500 2>&1)
check "audit: peer and route changes are recorded" \
  bash -c 'grep -q "peer.put.*pending" <<<"$1" && grep -q "route.put.*failed" <<<"$1" &&
           grep -q "route.delete" <<<"$1" && grep -q "peer.delete.*ok" <<<"$1"' _ "$out"

# ---- revocation (K-15, P-26) ---------------------------------------------------------------
out=$(ctl ra cert revoke "$ser" --reason keyCompromise 2>&1)
check "msspctl cert revoke: done" test $? -eq 0
out=$(ap sign --msisdn $U1 --profile mss::sign:loa3 2>&1)
check "the revoked signing key no longer signs (501)" grep -q "fault 501" <<<"$out"
out=$(ap sign --msisdn $U1 --profile mss::authn:loa3 2>&1)
check "... while the user's authentication key still does" grep -q "signature verified" <<<"$out"
check "the CRL lists the serial" \
  grep -qi "$ser" <<<"$(openssl crl -in "$DIR/ca/crl.pem" -noout -text 2>&1)"

# ---- publication for relying parties: OCSP (RFC 6960) and the CRL, plain HTTP ------------
ocsp() {
  openssl ocsp -issuer "$DIR/ca/ca.crt" -serial "0x$1" -url "http://127.0.0.1:$PKI_PORT/ocsp" \
    -CAfile "$DIR/ca/ca.crt" -resp_text 2>&1
}
out=$(ocsp "$ser")
check "OCSP: the revoked signing certificate: revoked (keyCompromise), signed by the CA" \
  bash -c 'grep -qi "^0x$2: revoked" <<<"$1" && grep -q "keyCompromise" <<<"$1" &&
           grep -q "Response verify OK" <<<"$1"' _ "$out" "$ser"
aser=$(grep -A6 '"key_id": "35847001001-authn"' <<<"$(ctl auditor --json cert list $U1 2>&1)" |
  sed -n 's/.*"serial": "\([0-9A-Fa-f]*\)".*/\1/p')
out=$(ocsp "$aser")
check "OCSP: the user's authentication certificate: good" \
  bash -c '[ -n "$2" ] && grep -qi "^0x$2: good" <<<"$1" && grep -q "Response verify OK" <<<"$1"' \
  _ "$out" "$aser"
out=$(curl -sS --max-time 30 "http://127.0.0.1:$PKI_PORT/crl" | openssl crl -inform DER -noout -text 2>&1)
check "GET /crl: a DER CRL that lists the serial" grep -qi "Serial Number: $ser" <<<"$out"
check "... and verifies against the CA" \
  quiet bash -c 'curl -sS --max-time 30 "http://127.0.0.1:$1/crl" |
    openssl crl -inform DER -CAfile "$2" -noout' _ "$PKI_PORT" "$DIR/ca/ca.crt"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "http://127.0.0.1:$PKI_PORT/other")
check "the publication listener serves nothing else (404)" [ "$code" = 404 ]

# ---- key-material scan (K-02..K-05) ---------------------------------------------------------
# A weak RSA key (public exponent 3) registered before the checks existed
# (inserted behind the platform's back, as a legacy import would): the
# scan finds it, disables the key and suspends its user.
openssl req -x509 -newkey rsa:2048 -pkeyopt rsa_keygen_pubexp:3 -nodes -subj /CN=weak -days 2 \
  -keyout "$WORK/weak.key" -out "$WORK/weak.crt" >/dev/null 2>&1
hex=$(openssl x509 -in "$WORK/weak.crt" -outform DER | od -An -tx1 -v | tr -d ' \n')
sqlite3 "$DIR/mssp.db" "INSERT INTO keys (key_id, key_group, msisdn, device_id, purpose, profiles, has_pin, state, cert, cert_serial, created_ms, updated_ms) SELECT '35847001002-legacy', 'legacy', msisdn, device_id, 1, 'mss:demo:authn:loa3:app', 1, 1, X'$hex', '01', 1, 1 FROM devices WHERE msisdn='$U2'" 2>"$WORK/sqlite.err"
check "a weak legacy key is in the store" test ! -s "$WORK/sqlite.err"
out=$(ctl admin keys scan 2>&1)
check "msspctl keys scan finds the weak key (rsa-exponent)" grep -q "rsa-exponent" <<<"$out"
out=$(ctl auditor --json user show $U2 2>&1)
check "... and its user is suspended" grep -q '"state": "suspended"' <<<"$out"
out=$(ap sign --msisdn $U2 --profile mss::authn:loa2 2>&1)
check "... so the AP gets 403 for that user" grep -q "fault 403\|403" <<<"$out"

# ---- audit log ---------------------------------------------------------------------------------
out=$(ctl auditor audit list --limit 500 2>&1)
check "audit: the registration steps are recorded" \
  bash -c 'grep -q user.create <<<"$1" && grep -q activation.create <<<"$1" && grep -q key.issued <<<"$1" && grep -q device.bind <<<"$1"' _ "$out"
check "audit: the refusals are recorded" grep -q "refused" <<<"$out"
check "audit: the administrator certificate on the AE is recorded" \
  grep -q "presented on the AE" <<<"$(ctl auditor --json audit list --limit 500 2>&1)"
check "msspctl audit verify (remote, auditor): intact" quiet ctl auditor audit verify
check "msspctl audit verify --data-dir (offline): intact" quiet "$BIN/msspctl" audit verify --data-dir "$DIR"
L=$DIR/audit/node1.log
cp "$L" "$WORK/a.log"; cp "$DIR/audit/node1.head" "$WORK/a.head"
sed -i '3s/"ok"/"OK"/' "$WORK/a.log"
out=$("$BIN/msspctl" audit verify --log "$WORK/a.log" --head "$WORK/a.head" --pub "$DIR/audit/audit.pub" 2>&1)
check "an edited entry is found, with its line (exit 1)" bash -c '[ $2 -eq 1 ] && grep -q "line 3" <<<"$1"' _ "$out" $?
cp "$L" "$WORK/b.log"; sed -i '5d' "$WORK/b.log"
out=$("$BIN/msspctl" audit verify --log "$WORK/b.log" --head "$DIR/audit/node1.head" --pub "$DIR/audit/audit.pub" 2>&1)
check "a deleted entry is found" grep -q "gap\|prev" <<<"$out"
cp "$L" "$WORK/c.log"; sed -i '$d' "$WORK/c.log"
out=$("$BIN/msspctl" audit verify --log "$WORK/c.log" --head "$DIR/audit/node1.head" --pub "$DIR/audit/audit.pub" 2>&1)
check "a truncated tail is found" grep -q "truncated" <<<"$out"
cp "$L" "$WORK/d.log"; awk 'NR==6{l=$0; next} NR==7{print; print l; next} {print}' "$L" >"$WORK/d.log"
out=$("$BIN/msspctl" audit verify --log "$WORK/d.log" --head "$DIR/audit/node1.head" --pub "$DIR/audit/audit.pub" 2>&1)
check "two swapped entries are found" grep -q "order\|prev" <<<"$out"

# ---- the ME stopped and started while signing goes on ------------------------------------------
kill "$MSSPD_PID"; wait "$MSSPD_PID" 2>/dev/null
: >"$WORK/msspd.log"
"$BIN/msspd" --data-dir "$DIR" --roles ae,home,afe,admin >>"$WORK/msspd.log" 2>&1 &
MSSPD_PID=$!; PIDS+=("$MSSPD_PID")
"$BIN/msspd" --data-dir "$DIR" --roles me >"$WORK/me.log" 2>&1 &
ME_PID=$!; PIDS+=("$ME_PID")
check "signing process and ME process start on one data directory" \
  bash -c 'wait_for() { for _ in $(seq 1 300); do grep -q "msspd: ready" "$1" && return 0; sleep 0.1; done; return 1; }; wait_for "$1" && wait_for "$2"' _ "$WORK/msspd.log" "$WORK/me.log"
wait_for "$WORK/phone.log" "^READY +35847000001 " 30 2
( for i in $(seq 1 12); do ap sign --msisdn +35847000001 --dtbd "During ME maintenance $i" 2>&1 | grep -c "signature verified"; sleep 0.3; done >"$WORK/during.out" ) &
loop=$!
sleep 1
kill "$ME_PID"; wait "$ME_PID" 2>/dev/null
check "the ME process stops" test -n "$(grep -c . "$WORK/me.log")"
sleep 1
"$BIN/msspd" --data-dir "$DIR" --roles me >"$WORK/me2.log" 2>&1 &
ME_PID=$!; PIDS+=("$ME_PID")
wait_for "$WORK/me2.log" "msspd: ready" 30
wait "$loop"
check "12 signatures, all verified, while the ME was stopped and started" \
  test "$(grep -c '^1$' "$WORK/during.out")" = 12
out=$(ctl ra session 2>&1)
check "the restarted ME answers" grep -q "role: ra" <<<"$out"
out=$(me_api admin POST "/aps/http%3A%2F%2Fdemo.ap%2F/suspend")
sleep 2
out=$(ap sign --msisdn +35847000001 2>&1)
check "an AP suspended through the separate ME: the AE refuses it (104)" grep -q "fault 104" <<<"$out"
me_api admin POST "/aps/http%3A%2F%2Fdemo.ap%2F/resume" >/dev/null

finish
