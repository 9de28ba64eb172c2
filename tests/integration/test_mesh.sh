#!/usr/bin/env bash
# The mesh (issue 6, TS 102 207) with three MSSPs on loopback, each its own
# msspd with its own PKI and its own mss-phone --demo:
#   A  http://mssp-a.test/  users +3584700000x  the demo AP's AE
#   B  http://mssp-b.test/  users +3584800000x  HomeMSSP of +35848
#   C  http://mssp-c.test/  users +3584900000x  HomeMSSP of +35849
# The AP (mss-ap, A's demo AP) talks to A only.  Checked: roamed signatures
# in all three modes over SOAP and JSON, verified against the home MSSP's
# user CA (mss-ap and openssl cms); status query, receipt and profile
# query across the mesh; profile names converted (A's map for B); a peer
# killed mid-request (780, no hang); a routing loop (780); the R rows of
# bad-inputs.md at a mesh listener with curl (R-01, R-04, R-05, R-06,
# R-07, R-08); and one prompt per roamed transaction (R-03).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
phase() { echo "# ${SECONDS}s: $*"; }

declare -A D ID PFX BASEP AEP MESHP MP PH
ID=([a]=http://mssp-a.test/ [b]=http://mssp-b.test/ [c]=http://mssp-c.test/)
PFX=([a]=+3584700000 [b]=+3584800000 [c]=+3584900000)
A1=+35847000001 B1=+35848000001 C1=+35849000001 B3=+35848000003
SOAP_ENV=http://www.w3.org/2003/05/soap-envelope
MSS_NS=http://uri.etsi.org/TS102204/v1.1.2#
MSRS_NS=http://uri.etsi.org/TS102207/v1.1.2#
MAP_LOCAL=mss:opA:sign:loa3:app   # A's commercial name ...
MAP_PEER=mss:demo:sign:loa3:app   # ... for B's signing profile

# ---- three nodes ---------------------------------------------------------
# A base port N with N..N+6 free (N+6: the mesh listener), not one taken.
USED=()
pick_node_port() {
  local n u
  for _ in $(seq 1 30); do
    n=$(pick_base_port) || return 1
    port_free $((n + 6)) || continue
    for u in "${USED[@]}"; do [ "$u" = "$n" ] && continue 2; done
    echo "$n"; return 0
  done
  return 1
}
for x in a b c; do
  BASEP[$x]=$(pick_node_port) || { echo "# no free ports"; exit 1; }
  USED+=("${BASEP[$x]}")
  D[$x]=$WORK/$x
  AEP[$x]=${BASEP[$x]}; MESHP[$x]=$((BASEP[$x] + 6))
done

ipids=()
for x in a b c; do
  "$BIN/msspd" init --data-dir "${D[$x]}" --demo --base-port "${BASEP[$x]}" \
    --mssp-id "${ID[$x]}" --demo-prefix "${PFX[$x]}" >"$WORK/init.$x.log" 2>&1 &
  ipids+=($!)
done
i=0
for x in a b c; do
  wait "${ipids[$i]}" || { echo "# msspd init of $x failed"; cat "$WORK/init.$x.log"; exit 1; }
  i=$((i + 1))
done
ok "msspd init of three nodes, each with its own PKI, MSSP_ID and demo users"

# [mesh] client_ca: the three nodes' TLS CAs (who may call a mesh listener;
# which peer it is, is the pinned certificate's business)
cat "${D[a]}/tls/ca.crt" "${D[b]}/tls/ca.crt" "${D[c]}/tls/ca.crt" >"$WORK/mesh-ca.pem"
for x in a b c; do
  f=${D[$x]}/msspd.conf
  if grep -q '^\[mesh\]' "$f"; then
    sed -i "/^\[mesh\]/,/^\[/ s|^client_ca = .*|client_ca = $WORK/mesh-ca.pem|" "$f"
    grep -q "^client_ca = $WORK/mesh-ca.pem" "$f" ||
      sed -i "/^\[mesh\]/a client_ca = $WORK/mesh-ca.pem" "$f"
  else
    printf '\n[mesh]\nport = %s\nclient_ca = %s\n' "${MESHP[$x]}" "$WORK/mesh-ca.pem" >>"$f"
  fi
done

start_node() {
  local x=$1 before=${2:-0}
  "$BIN/msspd" --data-dir "${D[$x]}" >>"$WORK/$x.msspd.log" 2>&1 &
  MP[$x]=$!
  PIDS+=("${MP[$x]}")
  wait_for "$WORK/$x.msspd.log" "msspd: ready" 30 $((before + 1))
}
start_phone_of() {
  local x=$1
  "$BIN/mss-phone" --data-dir "${D[$x]}" --demo --log "$WORK/$x.phone.log" \
    >>"$WORK/$x.phone.out" 2>&1 &
  PH[$x]=$!
  PIDS+=("${PH[$x]}")
}
for x in a b c; do
  start_node "$x" || { echo "# msspd $x did not start"; tail -30 "$WORK/$x.msspd.log"; exit 1; }
  start_phone_of "$x"
done
for x in a b c; do
  wait_for "$WORK/$x.phone.log" "^READY " 30 8 || {
    echo "# phones of $x did not connect"; tail -20 "$WORK/$x.phone.log" "$WORK/$x.msspd.log"; exit 1; }
done
ok "three msspd and three mss-phone running, 24 phones online"
check "B's demo users have B's numbers" grep -q "^READY $B1 " "$WORK/b.phone.log"
check "C's demo users have C's numbers" grep -q "^READY $C1 " "$WORK/c.phone.log"
listening() { ! port_free "$1"; }
for x in a b c; do
  check "${x^^}'s mesh listener is up on its AE port + 6" listening "${MESHP[$x]}"
done

# ---- configuration through msspctl (peers under dual control) -------------
phase "configuration through msspctl (peers under dual control)"
ctl() { local x=$1 who=$2; shift 2; "$BIN/msspctl" --data-dir "${D[$x]}" --account "$who" "$@"; }
# peer_add X P [options]: at X, peer P (its mesh URL, its pinned
# certificate, its CA), approved by a second administrator
peer_add() {
  local x=$1 p=$2 out appr
  shift 2
  out=$(ctl "$x" admin peer put "${ID[$p]}" --url "https://127.0.0.1:${MESHP[$p]}" \
    --cert "${D[$p]}/tls/server.crt" --ca-file "${D[$p]}/tls/ca.crt" --name "Operator ${p^^}" "$@" 2>&1)
  appr=$(sed -n 's/.*approval approve \([^) ]*\)).*/\1/p' <<<"$out")
  [ -n "$appr" ] || { echo "# $x: peer put ${ID[$p]}: $out"; return 1; }
  out=$(ctl "$x" admin approval approve "$appr" 2>&1) && {
    echo "# $x: the requester approved his own peer change"; return 1; }
  out=$(ctl "$x" admin2 approval approve "$appr" 2>&1) || {
    echo "# $x: approval of peer ${ID[$p]}: $out"; return 1; }
  out=$(ctl "$x" auditor peer get "${ID[$p]}" 2>&1) || { echo "# $x: peer get: $out"; return 1; }
}
route_add() { # routes are under dual control as peers are
  local x=$1 prefix=$2 p=$3 out appr
  shift 3
  out=$(ctl "$x" admin route put "$prefix" --peer "${ID[$p]}" "$@" 2>&1) || {
    echo "# $x: route put $prefix: $out"; return 1; }
  appr=$(sed -n 's/.*approval approve \([^) ]*\)).*/\1/p' <<<"$out")
  [ -n "$appr" ] || { echo "# $x: route put $prefix not pending: $out"; return 1; }
  out=$(ctl "$x" admin2 approval approve "$appr" 2>&1) || {
    echo "# $x: approval of route $prefix: $out"; return 1; }
}
check "A: peer B (profile map $MAP_LOCAL=$MAP_PEER), dual control" \
  peer_add a b --map "$MAP_LOCAL=$MAP_PEER"
check "A: peer C, dual control" peer_add a c
check "B: peer A" peer_add b a
check "B: peer C (known, never routed to)" peer_add b c
check "C: peer A" peer_add c a
check "A: route +35848 -> B" route_add a +35848 b
check "A: route +35849 -> C" route_add a +35849 c
out=$(ctl a auditor --json route list 2>&1)
check "route list at A shows both routes" \
  bash -c 'grep -q "\"+35848\"" <<<"$1" && grep -q "\"+35849\"" <<<"$1"' _ "$out"
out=$(ctl a auditor --json peer list 2>&1)
check "peer list at A shows B's profile map" grep -q "$MAP_LOCAL" <<<"$out"
sleep 2   # the AEs reload peers and routes within about a second

# ---- the AP at A, one mss-ap configuration per home MSSP's user CA -------------
phase "the AP at A, one mss-ap configuration per home MSSP's user CA"
for x in a b c; do
  sed "s|^user_ca = .*|user_ca = ${D[$x]}/demo/user-ca.crt|" "${D[a]}/demo/mss-ap.conf" \
    >"${D[a]}/demo/mss-ap-$x.conf"
done
apx() { local x=$1; shift; "$BIN/mss-ap" --config "${D[a]}/demo/mss-ap-$x.conf" "$@"; }
tid_of() { sed -n 's/^MSSP_TransID: \(T[0-9a-f]*\).*/\1/p' <<<"$1" | head -1; }
short() { tr '\n' ' ' <<<"$1" | cut -c1-300; }
sqla() { sqlite3 -cmd '.timeout 2000' "${D[a]}/mssp.db" "$@"; }
sqlx() { local x=$1; shift; sqlite3 -cmd '.timeout 2000' "${D[$x]}/mssp.db" "$@"; }

out=$(apx a sign --msisdn $A1 --mode synch --timeout 30 2>&1)
check "control: A's own user signs at A" grep -q "signature verified" <<<"$out"

# ---- 2. roamed signatures: B's and C's users, three modes, SOAP and JSON -------------
phase "2. roamed signatures: B's and C's users, three modes, SOAP and JSON"
for enc in soap json; do
  case $enc in soap) flag=();; json) flag=(--json);; esac
  for mode in synch async ss; do
    for x in b c; do
      m=${PFX[$x]}1
      out=$(apx "$x" "${flag[@]}" sign --msisdn "$m" --mode "$mode" --timeout 30 --poll-ms 200 \
        --dtbd "Mesh $enc $mode" 2>&1)
      rc=$?
      if [ $rc -eq 0 ] && grep -q "signature verified" <<<"$out"; then
        ok "$enc $mode: $m (home ${x^^}) signs through A, verified against ${x^^}'s user CA"
      else
        nok "$enc $mode: $m through A: want a verified signature, got rc=$rc: $(short "$out")"
      fi
    done
  done
done
out=$(apx a sign --msisdn $B1 --mode synch --timeout 30 2>&1)
check "B's user's signature does not verify against A's user CA (it is B's)" \
  grep -q "signature NOT verified" <<<"$out"
out=$(apx b sign --msisdn $B3 --mode synch --timeout 30 2>&1)
check "a home MSSP's error crosses the mesh: $B3 (PIN blocked at B) gives 402" \
  grep -q "fault 402" <<<"$out"
out=$(apx b sign --msisdn +35848000099 --mode synch --timeout 30 2>&1)
check "a number B does not know: B's 105 reaches the AP" grep -q "fault 105" <<<"$out"

# ---- 3. receipt and status across the mesh ----------------------------------------
phase "3. receipt and status across the mesh"
out=$(apx b sign --msisdn $B1 --mode async --timeout 30 --poll-ms 200 --dtbd "Receipt test" 2>&1)
tid=$(tid_of "$out")
check "async roamed signature for the receipt: verified" grep -q "signature verified" <<<"$out"
out=$(apx b receipt --trans-id "$tid" --msisdn $B1 --message "Thank you" 2>&1)
check "receipt for a roamed signature: accepted (100)" grep -Eq "status 100|REQUEST_OK" <<<"$out"
check "B's phone shows the receipt" wait_for "$WORK/b.phone.log" "^RECEIPT $B1 " 5
out=$(apx b receipt --trans-id "$tid" --msisdn $B1 --message "Again" 2>&1)
check "a second receipt for it: 101" grep -q "fault 101" <<<"$out"

kill -STOP "${PH[b]}"
out=$(apx b sign --msisdn $B1 --mode async --timeout 40 --no-wait --dtbs "Status across the mesh" 2>&1)
t_open=$(tid_of "$out")
check "async request for $B1 accepted while B's phone is frozen" test -n "$t_open"
sleep 0.5
out=$(apx b status --trans-id "$t_open" 2>&1)
check "status query of the open roamed transaction: 504" grep -q "status 504" <<<"$out"
kill -CONT "${PH[b]}"
res=""
for _ in $(seq 1 60); do
  res=$(apx b status --trans-id "$t_open" --dtbs "Status across the mesh" 2>&1)
  grep -q "status 504" <<<"$res" || break
  sleep 0.25
done
check "status query after the user signed: 500, signature verified against B's CA" \
  bash -c 'grep -q "status 500" <<<"$1" && grep -q "signature verified" <<<"$1"' _ "$res"
check "A's transaction names B as its peer" \
  test "$(sqla "SELECT peer FROM tx WHERE mssp_trans_id='$t_open'")" = "${ID[b]}"
t_b=$(sqla "SELECT peer_trans_id FROM tx WHERE mssp_trans_id='$t_open'")
check "A recorded B's MSSP_TransID of the roamed transaction" test -n "$t_b"
check "B's transaction belongs to mesh:A, keyed by A's MSSP_TransID" \
  test "$(sqlx b "SELECT ap_trans_id FROM tx WHERE mssp_trans_id='$t_b' AND ap_id='mesh:${ID[a]}'")" = "$t_open"

# ---- 4. profile names converted ----------------------------------------------------------
phase "4. profile names converted"
dtbs="Pay 10 EUR to Demo AP via the mesh"
req="<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"$SOAP_ENV\"><soapenv:Body><MSS_Signature><mss:MSS_SignatureReq xmlns:mss=\"$MSS_NS\" MajorVersion=\"1\" MinorVersion=\"1\" MessagingMode=\"synch\" TimeOut=\"30\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"mesh$RANDOM$RANDOM\" Instant=\"$(now_instant)\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>$B1</mss:MSISDN></mss:MobileUser><mss:DataToBeSigned MimeType=\"text/plain\" Encoding=\"UTF-8\">$dtbs</mss:DataToBeSigned><mss:SignatureProfile><mss:mssURI>$MAP_LOCAL</mss:mssURI></mss:SignatureProfile></mss:MSS_SignatureReq></MSS_Signature></soapenv:Body></soapenv:Envelope>"
resp=$(curl -sS --max-time 40 --cacert "${D[a]}/demo/tls-ca.crt" --cert "${D[a]}/demo/ap.crt" \
  --key "${D[a]}/demo/ap.key" -H 'Content-Type: application/soap+xml; charset=utf-8' \
  --data-binary "$req" "https://localhost:${AEP[a]}/soap/services/MSS_SignaturePort" \
  -w '\nHTTP %{http_code}\n' 2>&1)
check "curl: $MAP_LOCAL for $B1 at A: HTTP 200, status 500" \
  bash -c 'grep -q "^HTTP 200" <<<"$1" && grep -q "<mss:StatusCode Value=\"500\"" <<<"$1"' _ "$resp"
flat=$(tr -d '\n' <<<"$resp")
check "the answer's SignatureProfile is A's name $MAP_LOCAL" \
  grep -q "<mss:SignatureProfile><mss:mssURI>$MAP_LOCAL</mss:mssURI>" <<<"$flat"
check "... and never B's name" bash -c '! grep -q "$2" <<<"$1"' _ "$flat" "$MAP_PEER"
sig=$(sed -n 's/.*<mss:Base64Signature>\([^<]*\)<.*/\1/p' <<<"$flat")
printf '%s' "$sig" | base64 -d >"$WORK/sig.der" 2>/dev/null
printf '%s' "$dtbs" >"$WORK/dtbs.txt"
check "openssl cms -verify against B's user CA accepts it" \
  quiet openssl cms -verify -binary -inform DER -in "$WORK/sig.der" \
    -CAfile "${D[b]}/demo/user-ca.crt" -purpose any -out "$WORK/content.out"
check "the signed content is the DTBS" cmp -s "$WORK/content.out" "$WORK/dtbs.txt"
check "openssl cms -verify against A's user CA refuses it" \
  bash -c '! openssl cms -verify -binary -inform DER -in "$1" -CAfile "$2" -purpose any -out /dev/null >/dev/null 2>&1' \
  _ "$WORK/sig.der" "${D[a]}/demo/user-ca.crt"
t_p=$(sed -n 's/.*MSSP_TransID="\(T[0-9a-f]*\)".*/\1/p' <<<"$flat")
t_pb=$(sqla "SELECT peer_trans_id FROM tx WHERE mssp_trans_id='$t_p'")
[ -n "$t_pb" ] || t_pb=$(sqlx b "SELECT mssp_trans_id FROM tx WHERE ap_id='mesh:${ID[a]}' AND ap_trans_id='$t_p'")
check "B was asked for its own name $MAP_PEER" \
  test "$(sqlx b "SELECT profile FROM tx WHERE mssp_trans_id='$t_pb'")" = "$MAP_PEER"
budget=$(sqlx b "SELECT deadline_ms - created_ms FROM tx WHERE mssp_trans_id='$t_pb'")
check "R-05: B's deadline is A's TimeOut (30 s) less the hop margin (got ${budget:-none} ms)" \
  bash -c '[ -n "$1" ] && [ "$1" -gt 0 ] && [ "$1" -le 26000 ]' _ "$budget"
out=$(apx b sign --msisdn $B1 --profile "$MAP_LOCAL" --mode async --poll-ms 200 --timeout 30 2>&1)
check "mss-ap async with $MAP_LOCAL for $B1: verified" grep -q "signature verified" <<<"$out"
out=$(apx b profile --msisdn $B1 2>&1)
check "profile query for $B1 through A lists $MAP_LOCAL" grep -q "SignatureProfile: $MAP_LOCAL" <<<"$out"
check "... and not B's name $MAP_PEER" bash -c '! grep -q "SignatureProfile: $2" <<<"$1"' _ "$out" "$MAP_PEER"
out=$(apx c profile --msisdn $C1 2>&1)
check "profile query for $C1 (no map): C's names" grep -q "SignatureProfile: $MAP_PEER" <<<"$out"

# ---- 6. a routing loop: A -> B -> A --------------------------------------------------------
phase "6. a routing loop: A -> B -> A"
check "A: route +358470099 -> B" route_add a +358470099 b
check "B: route +358470099 -> A" route_add b +358470099 a
sleep 2
s0=$(date +%s%N)
out=$(apx b sign --msisdn +35847009901 --mode synch --timeout 30 2>&1)
ms=$(( ($(date +%s%N) - s0) / 1000000 ))
check "R-04: a signature for +35847009901 (A -> B -> A): 780" grep -q "fault 780" <<<"$out"
check "... at once (${ms} ms), not at the TimeOut" test "$ms" -lt 10000

# ---- 7. the R rows at B's mesh listener, raw SOAP with curl --------------------------------
phase "7. the R rows at B's mesh listener, raw SOAP with curl"
# rh_entry MSSP_ID ROLE RE_TRANSACTIONID TIMEOUT
rh_entry() {
  printf '<msrs:RoamingHeaderEntry MajorVersion="1" MinorVersion="1"><msrs:RE_SenderInfo Instant="%s" RE_TransactionID="%s" TimeOut="%s"><msrs:RE_Sender Mesh_Role="%s"><mss:MSSP_ID><mss:URI>%s</mss:URI></mss:MSSP_ID></msrs:RE_Sender></msrs:RE_SenderInfo></msrs:RoamingHeaderEntry>' \
    "$(now_instant | sed 's/\.000Z$/Z/')" "$3" "$4" "$2" "$1"
}
# rh HOME ENTRY...: a RoamingHeader (entries oldest first; HOME "-": no
# CommonHeader)
rh() {
  local home=$1 common=""; shift
  [ "$home" = - ] ||
    common="<msrs:CommonHeader><msrs:HomeMSSP><mss:MSSP_ID><mss:URI>$home</mss:URI></mss:MSSP_ID></msrs:HomeMSSP></msrs:CommonHeader>"
  printf '<msrs:RoamingHeader xmlns:msrs="%s" xmlns:mss="%s" soapenv:mustUnderstand="true" soapenv:role="%s/role/next">%s%s</msrs:RoamingHeader>' \
    "$MSRS_NS" "$MSS_NS" "$SOAP_ENV" "$(printf '%s' "$@")" "$common"
}
# envelope HEADER BODY
envelope() {
  printf '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="%s">%s<soapenv:Body>%s</soapenv:Body></soapenv:Envelope>' \
    "$SOAP_ENV" "${1:+<soapenv:Header>$1</soapenv:Header>}" "$2"
}
# sign_req MSISDN HOME: a synchronous MSS_SignatureReq as a forward to HOME
sign_req() {
  printf '<MSS_Signature><mss:MSS_SignatureReq xmlns:mss="%s" MajorVersion="1" MinorVersion="1" MessagingMode="synch" TimeOut="20"><mss:AP_Info AP_ID="http://demo.ap/" AP_PWD="" AP_TransID="r%s" Instant="%s"/><mss:MSSP_Info><mss:MSSP_ID><mss:URI>%s</mss:URI></mss:MSSP_ID></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>%s</mss:MSISDN></mss:MobileUser><mss:DataToBeSigned MimeType="text/plain" Encoding="UTF-8">R row</mss:DataToBeSigned><mss:SignatureProfile><mss:mssURI>mss::sign:loa3</mss:mssURI></mss:SignatureProfile></mss:MSS_SignatureReq></MSS_Signature>' \
    "$MSS_NS" "$RANDOM$RANDOM" "$(now_instant)" "$2" "$1"
}
# status_req MSSP_TRANSID HOME
status_req() {
  printf '<MSS_StatusQuery><mss:MSS_StatusReq xmlns:mss="%s" MajorVersion="1" MinorVersion="1" MSSP_TransID="%s"><mss:AP_Info AP_ID="http://demo.ap/" AP_PWD="" AP_TransID="s%s" Instant="%s"/><mss:MSSP_Info><mss:MSSP_ID><mss:URI>%s</mss:URI></mss:MSSP_ID></mss:MSSP_Info></mss:MSS_StatusReq></MSS_StatusQuery>' \
    "$MSS_NS" "$1" "$RANDOM$RANDOM" "$(now_instant)" "$2"
}
# mesh_post CERT KEY TO PORT BODY: POST to X's mesh listener as CERT
mesh_post() {
  curl -sS --max-time 25 --cacert "${D[$3]}/tls/ca.crt" --cert "$1" --key "$2" \
    -H 'Content-Type: application/soap+xml; charset=utf-8' --data-binary "$5" \
    -w '\nHTTP %{http_code}\n' "https://127.0.0.1:${MESHP[$3]}/soap/services/$4" 2>&1
}
ACRT=${D[a]}/tls/server.crt AKEY=${D[a]}/tls/server.key
CCRT=${D[c]}/tls/server.crt CKEY=${D[c]}/tls/server.key
R_USER=+35848000002
printf '%s' "$(envelope "" "$(sign_req $R_USER "${ID[b]}")")" >"$WORK/r01.xml"

out=$(mesh_post "$ACRT" "$AKEY" b MSS_SignaturePort "$(cat "$WORK/r01.xml")")
check "R-01: no RoamingHeader, from A's certificate: 701" grep -q "_701" <<<"$out"
out=$(mesh_post "${D[a]}/demo/ap.crt" "${D[a]}/demo/ap.key" b MSS_SignaturePort \
  "$(envelope "$(rh "${ID[b]}" "$(rh_entry "${ID[a]}" AE Tr1$RANDOM 20)")" "$(sign_req $R_USER "${ID[b]}")")")
check "R-06: an unknown client certificate (the demo AP's): 104 or refused" \
  bash -c 'grep -q "_104" <<<"$1" || ! grep -q "^HTTP [1-5]" <<<"$1"' _ "$out"
out=$(mesh_post "$ACRT" "$AKEY" b MSS_SignaturePort \
  "$(envelope "$(rh "${ID[b]}" "$(rh_entry "${ID[c]}" AE Tr2$RANDOM 20)")" "$(sign_req $R_USER "${ID[b]}")")")
check "R-06: from A's certificate, the last entry naming C: 104" grep -q "_104" <<<"$out"
out=$(mesh_post "$ACRT" "$AKEY" b MSS_SignaturePort \
  "$(envelope "$(rh - "$(rh_entry "${ID[a]}" AE Tr5$RANDOM 20)")" "$(sign_req $R_USER "${ID[b]}")")")
check "R-02: no CommonHeader/HomeMSSP: 703" grep -q "_703" <<<"$out"
out=$(mesh_post "$ACRT" "$AKEY" b MSS_SignaturePort \
  "$(envelope "$(rh "${ID[b]}" "$(rh_entry "${ID[a]}" AE Tr6$RANDOM 20)")" \
    "$(sign_req $R_USER "${ID[b]}" | sed 's/TimeOut="20"/TimeOut="20" ValidityDate="2020-01-01T00:00:00Z"/')")")
check "R-02: validity date of the transaction passed: 720" grep -q "_720" <<<"$out"
out=$(mesh_post "$ACRT" "$AKEY" b MSS_SignaturePort \
  "$(envelope "$(rh "${ID[b]}" "$(rh_entry "${ID[b]}" AE Tr3$RANDOM 25)" "$(rh_entry "${ID[a]}" TransitMSSP Tr4$RANDOM 20)")" \
    "$(sign_req $R_USER "${ID[b]}")")")
check "R-04: B's own MSSP_ID in the history: 780" grep -q "_780" <<<"$out"
e9=()
for i in 1 2 3 4 5 6 7 8; do e9+=("$(rh_entry "http://mssp-x$i.test/" TransitMSSP Tx$i$RANDOM $((60 - i)))"); done
e9+=("$(rh_entry "${ID[a]}" TransitMSSP Tx9$RANDOM 20)")
out=$(mesh_post "$ACRT" "$AKEY" b MSS_SignaturePort \
  "$(envelope "$(rh "${ID[b]}" "${e9[@]}")" "$(sign_req $R_USER "${ID[b]}")")")
check "R-04: nine RoamingHeaderEntry elements: 780" grep -q "_780" <<<"$out"
check "none of the refused requests reached B's phone for $R_USER" \
  bash -c '! grep -q "^PROMPT $1 " "$2"' _ "$R_USER" "$WORK/b.phone.log"

# R-07: B's transaction for A, asked by A (the route it came by) and by C
if [ -n "$t_b" ]; then
  out=$(mesh_post "$ACRT" "$AKEY" b MSS_StatusQueryPort \
    "$(envelope "$(rh "${ID[b]}" "$(rh_entry "${ID[a]}" AE "$t_open" 20)")" "$(status_req "$t_b" "${ID[b]}")")")
  check "control: A asks B for B's transaction of A: 500" grep -q '<mss:StatusCode Value="500"' <<<"$out"
  out=$(mesh_post "$CCRT" "$CKEY" b MSS_StatusQueryPort \
    "$(envelope "$(rh "${ID[b]}" "$(rh_entry "${ID[c]}" AE "T$RANDOM" 20)")" "$(status_req "$t_b" "${ID[b]}")")")
  check "R-07: C asks B for that transaction (another route): 101" grep -q "_101" <<<"$out"
else
  nok "R-07: no B MSSP_TransID of a roamed transaction to ask for"
fi

# R-08: a "peer" that answers garbage (openssl s_server in plain mode
# writes what it reads from a FIFO to its one client: a 200 whose body is
# not SOAP), pinned and trusted at A, routed to for one exact number
GP=$(pick_node_port) || GP=0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=garbage.test -days 2 \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "extendedKeyUsage=serverAuth,clientAuth" \
  -keyout "$WORK/garbage.key" -out "$WORK/garbage.crt" >/dev/null 2>&1
mkfifo "$WORK/garbage.fifo"
openssl s_server -quiet -naccept 1 -accept "$GP" -cert "$WORK/garbage.crt" -key "$WORK/garbage.key" \
  <"$WORK/garbage.fifo" >"$WORK/garbage.log" 2>&1 &
PIDS+=($!)
exec 7>"$WORK/garbage.fifo"
junk='<html><body>s_server: not SOAP at all</body></html>'
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: %d\r\n\r\n%s' \
  "${#junk}" "$junk" >&7
ID[g]=http://mssp-garbage.test/ MESHP[g]=$GP D[g]=$WORK/g
mkdir -p "$WORK/g/tls" && cp "$WORK/garbage.crt" "$WORK/g/tls/server.crt" && cp "$WORK/garbage.crt" "$WORK/g/tls/ca.crt"
check "A: peer 'garbage', dual control" peer_add a g
check "A: route +35847009902 (exact) -> garbage" route_add a +35847009902 g --exact
sleep 2
s0=$(date +%s%N)
out=$(apx b sign --msisdn +35847009902 --mode synch --timeout 30 2>&1)
ms=$(( ($(date +%s%N) - s0) / 1000000 ))
exec 7>&-
check "R-08: a peer answering garbage: 780" grep -q "fault 780" <<<"$out"
check "... at once (${ms} ms: the garbage, not a timeout)" test "$ms" -lt 10000
check "... and nothing of the garbage reaches the AP" bash -c '! grep -qi "html\|s_server" <<<"$1"' _ "$out"

# ---- 5. a peer killed mid-request ----------------------------------------------------------
phase "5. a peer killed mid-request"
kill -STOP "${PH[c]}"
k0=$(date +%s%N)
( apx c sign --msisdn $C1 --mode synch --timeout 30 --dtbd "Peer killed" >"$WORK/kill.out" 2>&1
  date +%s%N >"$WORK/kill.end" ) &
kbg=$!
arrived=0
for _ in $(seq 1 50); do
  n=$(sqlx c "SELECT count(*) FROM tx WHERE msisdn='$C1' AND ap_id='mesh:${ID[a]}' AND state IN ('ACCEPTED','PROMPT_SENT')" 2>/dev/null)
  [ "${n:-0}" -ge 1 ] && { arrived=1; break; }
  sleep 0.1
done
check "the request for $C1 reached C (open there, the phone frozen)" test $arrived = 1
kill -9 "${MP[c]}"; wait "${MP[c]}" 2>/dev/null
kt=$(date +%s%N)
for _ in $(seq 1 150); do [ -s "$WORK/kill.end" ] && break; sleep 0.1; done
if [ -s "$WORK/kill.end" ]; then
  ms=$(( ($(cat "$WORK/kill.end") - kt) / 1000000 ))
  check "R-03: C killed with -9 mid-request: the AP gets 780" grep -q "fault 780" "$WORK/kill.out"
  check "... ${ms} ms after the kill, well before the TimeOut (30 s)" test "$ms" -lt 8000
else
  nok "R-03: no answer 15 s after C was killed ($(( ($(date +%s%N) - k0) / 1000000 )) ms since the request)"
  kill "$kbg" 2>/dev/null
fi
wait "$kbg" 2>/dev/null
kill -CONT "${PH[c]}"
check "C restarted on the same data" start_node c 1
res=""
for _ in $(seq 1 20); do   # C1's old prompt may hold the key a moment (A-22)
  res=$(apx c sign --msisdn $C1 --mode synch --timeout 30 --dtbd "After the restart" 2>&1)
  grep -q "signature verified" <<<"$res" && break
  sleep 0.5
done
check "after C's restart its users sign through A again" grep -q "signature verified" <<<"$res"

# ---- 9. the AP's MSSP stops or crashes mid-request (F-01, mesh.md "Restart") ---------------
phase "9. A stops (SIGTERM) and crashes (kill -9) while B's user is deciding"
wait_state() { # NODE MSISDN STATE: a transaction of MSISDN in STATE at NODE within 5 s
  local n
  for _ in $(seq 1 50); do
    n=$(sqlx "$1" "SELECT count(*) FROM tx WHERE msisdn='$2' AND state='$3'" 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && return 0
    sleep 0.1
  done
  return 1
}
status_until() { # TRANS_ID: poll the AP's status query at A until a final answer
  local r
  for _ in $(seq 1 40); do
    r=$(apx b status --trans-id "$1" --dtbs "$2" 2>&1)
    grep -q "status 504" <<<"$r" || break
    sleep 0.5
  done
  printf '%s' "$r"
}
# (a) graceful stop of A with a forwarded asynchronous request
kill -STOP "${PH[b]}"
out=$(apx b sign --msisdn $B1 --mode async --timeout 60 --dtbs "A stops" --no-wait 2>&1)
t9=$(tid_of "$out")
check "asynchronous request for $B1 accepted by A ($t9)" test -n "$t9"
check "... and open at B" wait_state b $B1 PROMPT_SENT
kill "${MP[a]}"; wait "${MP[a]}" 2>/dev/null
st=$(sqla "SELECT state || ' ' || peer_trans_id FROM tx WHERE mssp_trans_id='$t9'")
check "SIGTERM of A leaves the roamed transaction open for recovery ($st)" \
  bash -c '[[ "$1" == "PROMPT_SENT T"* ]]' _ "$st"
check "A restarted" start_node a 1
kill -CONT "${PH[b]}"
res=$(status_until "$t9" "A stops")
check "after A's restart the user's signature arrives (B's notification): 500, verified" \
  bash -c 'grep -q "status 500" <<<"$1" && grep -q "signature verified" <<<"$1"' _ "$res"
# (b) A killed with -9 while a synchronous forward waits at B
kill -STOP "${PH[b]}"
( apx b sign --msisdn $B1 --mode synch --timeout 60 --dtbs "A crashes" >"$WORK/crash.out" 2>&1 ) &
cbg=$!
check "synchronous request for $B1 open at B" wait_state b $B1 PROMPT_SENT
t10=$(sqla "SELECT mssp_trans_id FROM tx WHERE msisdn='$B1' AND state='PROMPT_SENT'")
kill -9 "${MP[a]}"; wait "${MP[a]}" 2>/dev/null; wait "$cbg" 2>/dev/null
check "A restarted after kill -9" start_node a 2
kill -CONT "${PH[b]}"
res=$(status_until "$t10" "A crashes")
check "recovery forwards it again, B answers the same transaction: 500, verified" \
  bash -c 'grep -q "status 500" <<<"$1" && grep -q "signature verified" <<<"$1"' _ "$res"
n=$(sqlx b "SELECT count(*) FROM tx WHERE ap_id='mesh:${ID[a]}' AND ap_trans_id='$t10'")
check "... one transaction at B for it (the re-forward was a replay)" test "$n" = 1

# ---- 8. no second prompt: one PROMPT at B per roamed transaction ------------------------
phase "8. no second prompt: one PROMPT at B per roamed transaction"
dups=$(awk '$1 == "PROMPT" { n[$3]++ } END { d = 0; for (k in n) if (n[k] > 1) d++; print d }' "$WORK/b.phone.log")
check "no roamed transaction prompted twice at B" test "$dups" -eq 0
n_a=$(sqla "SELECT count(*) FROM tx WHERE peer='${ID[b]}' AND msisdn='$B1'")
n_b=$(sqlx b "SELECT count(*) FROM tx WHERE ap_id='mesh:${ID[a]}' AND msisdn='$B1'")
n_p=$(grep -c "^PROMPT $B1 " "$WORK/b.phone.log")
check "transactions for $B1: A $n_a routed to B, B $n_b from A, $n_p prompts on B's phone" \
  bash -c '[ "$1" -gt 0 ] && [ "$1" = "$2" ] && [ "$2" = "$3" ]' _ "$n_a" "$n_b" "$n_p"
dups=$(awk '$1 == "PROMPT" { n[$3]++ } END { d = 0; for (k in n) if (n[k] > 1) d++; print d }' "$WORK/c.phone.log")
check "no transaction prompted twice at C" test "$dups" -eq 0

if [ "$FAILED" -gt 0 ]; then
  for x in a b c; do
    echo "# ---- $x: msspd log (last lines)"
    grep -iE "mesh|roam|peer|route|error|fail" "$WORK/$x.msspd.log" | tail -15 | sed 's/^/# /'
  done
fi
finish
