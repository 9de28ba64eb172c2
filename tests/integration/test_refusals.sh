#!/usr/bin/env bash
# What the AE refuses, and how: mutual TLS (no certificate, an untrusted
# CA), the AP binding (AP_ID of another AP, an AP suspended through the ME),
# HTTP-level refusals, replay (A-01), concurrency on one user (A-22) and
# slow clients that must not hold the server (T-xx, H-03).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
setup_platform
URL=https://localhost:$AE_PORT/soap/services/MSS_SignaturePort

soap_req() { # msisdn ap_trans_id instant mode dtbs [ap_id] [timeout]
  cat <<XML
<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://www.w3.org/2003/05/soap-envelope"><soapenv:Body><MSS_Signature><mss:MSS_SignatureReq xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#" MajorVersion="1" MinorVersion="1" MessagingMode="$4" TimeOut="${7:-30}"><mss:AP_Info AP_ID="${6:-http://demo.ap/}" AP_PWD="x" AP_TransID="$2" Instant="$3"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>$1</mss:MSISDN></mss:MobileUser><mss:DataToBeSigned MimeType="text/plain" Encoding="UTF-8">$5</mss:DataToBeSigned><mss:SignatureProfile><mss:mssURI>mss::sign:loa3</mss:mssURI></mss:SignatureProfile></mss:MSS_SignatureReq></MSS_Signature></soapenv:Body></soapenv:Envelope>
XML
}
post() { ae_curl -H 'Content-Type: application/soap+xml; charset=utf-8' --data-binary "$1" "$URL" -w '\nHTTP %{http_code}\n'; }

# --- mutual TLS ---------------------------------------------------------
out=$(curl -sS --max-time 10 --cacert "$DIR/demo/tls-ca.crt" -H 'Content-Type: text/xml' \
  --data-binary "$(soap_req +35847000001 nocert "$(now_instant)" synch x)" "$URL" 2>&1)
rc=$?
# the demo accepts REST credentials ([ae] rest_auth = cert basic apikey), so
# the handshake asks for a certificate without requiring one: SOAP, which
# has no other credential, is then refused with a clear 104 (rest.md)
check "no client certificate: the handshake completes (curl $rc)" test $rc -eq 0
check "no client certificate: SOAP refused with 104" grep -q "mss:_104" <<<"$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=demo.ap \
  -keyout "$WORK/rogue.key" -out "$WORK/rogue.crt" >/dev/null 2>&1
out=$(curl -sS --max-time 10 --cacert "$DIR/demo/tls-ca.crt" --cert "$WORK/rogue.crt" --key "$WORK/rogue.key" \
  -H 'Content-Type: text/xml' --data-binary "$(soap_req +35847000001 rogue "$(now_instant)" synch x)" "$URL" 2>&1)
rc=$?
check "certificate from an untrusted CA: refused (curl $rc)" test $rc -ne 0
check "msspd logged the refused handshakes" grep -q "tls_handshake_failed" "$WORK/msspd.log"

# --- AP binding -----------------------------------------------------------
out=$(post "$(soap_req +35847000001 other$RANDOM "$(now_instant)" synch x http://other.ap/)")
check "AP_ID of another AP with the demo AP's certificate: 104" grep -q "mss:_104" <<<"$out"
loads=$(grep -c "ev=conf.aps_loaded" "$WORK/msspd.log")
out=$(me_api admin POST "/aps/http%3A%2F%2Fdemo.ap%2F/suspend")
check "ME: AP suspended (200)" grep -q "^HTTP 200" <<<"$out"
wait_for "$WORK/msspd.log" "ev=conf.aps_loaded" 5 $((loads + 1))
out=$(ap sign --msisdn +35847000001 2>&1)
check "suspended AP (at once, through the ME): 104" grep -q "fault 104" <<<"$out"
out=$(me_api admin POST "/aps/http%3A%2F%2Fdemo.ap%2F/resume")
check "ME: AP resumed (200)" grep -q "^HTTP 200" <<<"$out"
wait_for "$WORK/msspd.log" "ev=conf.aps_loaded" 5 $((loads + 2))
out=$(ap sign --msisdn +35847000001 2>&1)
check "resumed AP signs again" grep -q "signature verified" <<<"$out"

# --- HTTP-level refusals --------------------------------------------------
code=$(ae_curl -o /dev/null -w '%{http_code}' "https://localhost:$AE_PORT/nothing/here")
check "unknown path: 404" test "$code" = 404
code=$(ae_curl -o /dev/null -w '%{http_code}' "$URL")
check "GET on a SOAP port: 405" test "$code" = 405
code=$(ae_curl -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary x "$URL")
check "wrong media type: 415" test "$code" = 415
out=$(ae_curl -H 'Content-Type: text/xml' --data-binary '<not-soap' "$URL" -w '\nHTTP %{http_code}\n')
check "malformed XML: a SOAP fault with HTTP 500" grep -q "^HTTP 500" <<<"$out"
out=$(post "$(soap_req +35847000001 old$RANDOM 2020-01-01T00:00:00Z synch x)")
check "Instant out of skew: 101 (A-02)" grep -q "mss:_101" <<<"$out"
out=$(post "$(soap_req +35847000001 to$RANDOM "$(now_instant)" synch x http://demo.ap/ 601)")
check "TimeOut above the maximum: a fault" grep -q "^HTTP 500" <<<"$out"
past=$(soap_req +35847000001 vd$RANDOM "$(now_instant)" synch x | sed 's/TimeOut="30"/TimeOut="30" ValidityDate="2020-01-01T00:00:00Z"/')
out=$(post "$past")
check "ValidityDate in the past: 101 (A-15)" grep -q "mss:_101" <<<"$out"
out=$(post '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
check "DOCTYPE refused, nothing of /etc/passwd echoed" bash -c "grep -q '^HTTP 500' <<<\"\$1\" && ! grep -q root: <<<\"\$1\"" _ "$out"

# --- what the user sees (P-02) and what the AP may use (P-12) -------------------
b64req() { # msisdn ap_trans_id mimetype data(base64) [profile]
  cat <<XML
<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://www.w3.org/2003/05/soap-envelope"><soapenv:Body><MSS_Signature><mss:MSS_SignatureReq xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#" MajorVersion="1" MinorVersion="1" MessagingMode="synch" TimeOut="20"><mss:AP_Info AP_ID="http://demo.ap/" AP_PWD="x" AP_TransID="$2" Instant="$(now_instant)"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>$1</mss:MSISDN></mss:MobileUser><mss:DataToBeSigned MimeType="$3" Encoding="base64">$4</mss:DataToBeSigned>${5:+<mss:SignatureProfile><mss:mssURI>$5</mss:mssURI></mss:SignatureProfile>}</mss:MSS_SignatureReq></MSS_Signature></soapenv:Body></soapenv:Envelope>
XML
}
hash=$(printf 'contract' | openssl dgst -sha256 -binary | base64)
out=$(post "$(b64req +35847000001 h$RANDOM$RANDOM application/x-sha256 "$hash" mss::sign:loa3)")
check "a hash DTBS without DataToBeDisplayed: 102, nothing signed unseen" grep -q "mss:_102" <<<"$out"
text=$(printf 'Transfer 10 EUR to Demo AP' | base64)
out=$(post "$(b64req +35847000001 t$RANDOM$RANDOM text/plain "$text" mss::sign:loa3)")
check "base64 text DTBS without DTBD: shown decoded and signed" grep -q 'StatusCode Value="500"' <<<"$out"
# the AP's allowed profiles (an AP trust change: two administrators, P-09)
set_ap_profiles() {
  local out appr loads
  loads=$(grep -c "ev=conf.aps_loaded" "$WORK/msspd.log")
  out=$(me_api admin PUT "/aps/http%3A%2F%2Fdemo.ap%2F" "{\"profiles\":[\"$1\"]}")
  appr=$(sed -n 's/.*"approval": *"\(A[0-9a-f]*\)".*/\1/p' <<<"$out")
  me_api admin2 POST "/approvals/$appr/approve" >/dev/null
  wait_for "$WORK/msspd.log" "ev=conf.aps_loaded" 5 $((loads + 1))
}
set_ap_profiles "mss::sign:loa3"
out=$(ap sign --msisdn +35847000001 --profile mss::authn:loa2 2>&1)
check "a profile outside the AP's allow-list: 109" grep -q "fault 109" <<<"$out"
out=$(post "$(b64req +35847000001 n$RANDOM$RANDOM text/plain "$text")")
check "no SignatureProfile: only a key the AP may use is chosen" \
  grep -q "mss:demo:sign:loa3:app" <<<"$out"
out=$(ap sign --msisdn +35847000001 --profile mss:demo:sign:loa3:app 2>&1)
check "a concrete profile covered by an allowed one signs" grep -q "signature verified" <<<"$out"
set_ap_profiles "*"

# --- replay (A-01) -------------------------------------------------------------
id=replay$RANDOM$RANDOM; inst=$(now_instant)
body=$(soap_req +35847000001 "$id" "$inst" asynchClientServer "Replay me")
r1=$(post "$body"); r2=$(post "$body")
t1=$(sed -n 's/.*MSSP_TransID="\([^"]*\)".*/\1/p' <<<"$r1" | head -1)
t2=$(sed -n 's/.*MSSP_TransID="\([^"]*\)".*/\1/p' <<<"$r2" | head -1)
check "byte-identical resend: the same MSSP_TransID" test -n "$t1" -a "$t1" = "$t2"
r3=$(post "$(soap_req +35847000001 "$id" "$inst" asynchClientServer "Other content")")
check "same AP_TransID, other content: 101" grep -q "mss:_101" <<<"$r3"
sleep 1
n=$(grep -c "^PROMPT +35847000001 " "$WORK/phone.log")
before=$n
wait_for "$WORK/phone.log" "^ACK +35847000001" 5
out=$(ap status --trans-id "$t1" 2>&1)
check "the replayed transaction completed once" grep -q "status 500" <<<"$out"

# --- concurrency on one user (A-22) -----------------------------------------------
par=()
for i in $(seq 1 20); do
  ( ap sign --msisdn +35847000004 --timeout 3 --dtbd "parallel $i" >"$WORK/par.$i" 2>&1 ) &
  par+=($!)
done
wait "${par[@]}"
n208=$(cat "$WORK"/par.* | grep -c "fault 208")
n406=$(cat "$WORK"/par.* | grep -c "fault 406")
check "20 parallel requests to one user: exactly one proceeds (208 at TimeOut)" test "$n208" -eq 1
check "the 19 others: 406 PB_SIGNATURE_PROCESS" test "$n406" -eq 19
check "the user saw exactly one prompt" test "$(grep -c '^PROMPT +35847000004 ' "$WORK/phone.log")" -eq 1

# --- slow clients ------------------------------------------------------------------
slow=()
for i in $(seq 1 30); do
  ( { printf 'POST /soap/services/MSS_SignaturePort HTTP/1.1\r\nHost: localhost\r\n'; sleep 30; } |
    timeout 40 openssl s_client -quiet -connect "127.0.0.1:$AE_PORT" -cert "$DIR/demo/ap.crt" \
      -key "$DIR/demo/ap.key" -CAfile "$DIR/demo/tls-ca.crt" >/dev/null 2>&1 ) &
  slow+=($!)
done
sleep 1
start=$(date +%s%N)
out=$(ap sign --msisdn +35847000001 2>&1)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "30 slowloris connections do not hold the workers: a signature in ${ms} ms" \
  grep -q "signature verified" <<<"$out"
sleep 12
# the writers sleep on; what matters is whether the TLS clients are gone
alive=$(pgrep -fc "s_client -quiet -connect 127.0.0.1:$AE_PORT")
check "slow clients are cut at the header deadline ($alive still open after 13 s)" test "$alive" -eq 0
pkill -f "s_client -quiet -connect 127.0.0.1:$AE_PORT"
for p in "${slow[@]}"; do kill "$p" 2>/dev/null; done

finish
