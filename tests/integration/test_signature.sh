#!/usr/bin/env bash
# The signature path end to end (issue 4): msspd + mss-phone --demo + mss-ap,
# every demo user in every messaging mode over SOAP 1.2, SOAP 1.1 and JSON,
# then curl + openssl (signature checked with `openssl cms -verify`).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
setup_platform

# msisdn -> expected TS 102 204 code with the default signing profile
declare -A WANT=(
  [+35847000001]=500 [+35847000002]=401 [+35847000003]=402 [+35847000004]=208
  [+35847000005]=403 [+35847000006]=404 [+35847000007]=501 [+35847000008]=503
  [+35847000009]=105
)

for enc in soap12 soap11 json; do
  case $enc in soap12) flag=();; soap11) flag=(--soap11);; json) flag=(--json);; esac
  for mode in synch async ss; do
    for m in +35847000001 +35847000002 +35847000003 +35847000004 +35847000005 \
             +35847000006 +35847000007 +35847000008 +35847000009; do
      want=${WANT[$m]}
      out=$(ap "${flag[@]}" sign --msisdn "$m" --mode "$mode" --timeout 2 --poll-ms 200 2>&1)
      rc=$?
      if [ "$want" = 500 ]; then
        if [ $rc -eq 0 ] && grep -q "signature verified" <<<"$out"; then
          ok "$enc $mode $m: signed and verified"
        else
          nok "$enc $mode $m: want a verified signature, got rc=$rc: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
        fi
      elif [ $rc -eq 1 ] && grep -Eq "(status|fault) $want( |$)" <<<"$out"; then
        ok "$enc $mode $m: $want"
      else
        nok "$enc $mode $m: want $want, got rc=$rc: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
      fi
    done
  done
done

# Profile query, receipt and handshake through mss-ap.
out=$(ap profile --msisdn +35847000001 2>&1)
check "profile query lists the signing profile" grep -q "mss:demo:sign:loa3:app" <<<"$out"
out=$(ap sign --msisdn +35847000001 --mode async --poll-ms 200 2>&1)
tid=$(sed -n 's/.*MSSP_TransID[: =]*\(T[0-9a-f]\{32\}\).*/\1/p' <<<"$out" | head -1)
if [ -n "$tid" ]; then
  out=$(ap receipt --trans-id "$tid" --msisdn +35847000001 --message "Thank you" 2>&1)
  check "receipt for a signed transaction is accepted" grep -Eq "status 100|REQUEST_OK" <<<"$out"
  check "the phone shows the receipt" wait_for "$WORK/phone.log" "^RECEIPT +35847000001" 5
  out=$(ap receipt --trans-id "$tid" --msisdn +35847000001 --message "Again" 2>&1)
  check "a second receipt is refused (101)" grep -q "fault 101" <<<"$out"
else
  nok "async signature gave no MSSP_TransID: $out"
fi
out=$(ap handshake 2>&1)
check "handshake answers" test $? -eq 0

# curl + openssl: a hand-written SOAP 1.2 request, the signature verified by
# openssl cms against the user CA and the DTBS.
dtbs="Pay 10 EUR to Demo AP"
req=$(cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://www.w3.org/2003/05/soap-envelope"><soapenv:Body><MSS_Signature><mss:MSS_SignatureReq xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#" MajorVersion="1" MinorVersion="1" MessagingMode="synch" TimeOut="30"><mss:AP_Info AP_ID="http://demo.ap/" AP_PWD="x" AP_TransID="curl$RANDOM$RANDOM" Instant="$(now_instant)"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>+35847000001</mss:MSISDN></mss:MobileUser><mss:DataToBeSigned MimeType="text/plain" Encoding="UTF-8">$dtbs</mss:DataToBeSigned><mss:SignatureProfile><mss:mssURI>http://alauda.mobi/nonRepudiation</mss:mssURI></mss:SignatureProfile></mss:MSS_SignatureReq></MSS_Signature></soapenv:Body></soapenv:Envelope>
XML
)
resp=$(ae_curl -H 'Content-Type: text/xml;charset=utf-8' --data-binary "$req" \
  "https://localhost:$AE_PORT/soap/services/MSS_SignaturePort" -w '\nHTTP %{http_code}\n')
check "curl synch signature: HTTP 200" grep -q "^HTTP 200" <<<"$resp"
check "curl synch signature: status 500" grep -q '<mss:StatusCode Value="500"' <<<"$resp"
sig=$(tr -d '\n' <<<"$resp" | sed -n 's/.*<mss:Base64Signature>\([^<]*\)<.*/\1/p')
printf '%s' "$sig" | base64 -d >"$WORK/sig.der" 2>/dev/null
printf '%s' "$dtbs" >"$WORK/dtbs.txt"
check "openssl cms -verify accepts the signature over the DTBS" \
  openssl cms -verify -binary -inform DER -in "$WORK/sig.der" -CAfile "$DIR/demo/user-ca.crt" \
    -purpose any -out "$WORK/content.out"
check "the signed content is the DTBS" cmp -s "$WORK/content.out" "$WORK/dtbs.txt"

# JSON over curl (Kiuru REST form)
jreq=$(cat <<JSON
{"MSS_SignatureReq":{"AP_Info":{"AP_ID":"http://demo.ap/","AP_PWD":"x","AP_TransID":"j$RANDOM$RANDOM","Instant":"$(now_instant)"},"MSSP_Info":{"MSSP_ID":{}},"MessagingMode":"synch","MobileUser":{"MSISDN":"+35847000002"},"DataToBeSigned":{"Data":"Log in?","Encoding":"UTF-8","MimeType":"text/plain"},"SignatureProfile":"mss::sign:loa3","TimeOut":"20"}}
JSON
)
resp=$(ae_curl -H 'Content-Type: application/json' --data-binary "$jreq" \
  "https://localhost:$AE_PORT/rest/service" -w '\nHTTP %{http_code}\n')
check "curl JSON: user cancel is a fault with HTTP 500" grep -q "^HTTP 500" <<<"$resp"
check "curl JSON: code 401" grep -q "401" <<<"$resp"

# metrics and health on the admin listener
check "healthz is ok" curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz"
check "metrics count signatures" \
  bash -c "curl -sf http://127.0.0.1:$ADMIN_PORT/metrics | grep -q '^mssp_tx_final_total{outcome=\"signature\"} [1-9]'"

finish
